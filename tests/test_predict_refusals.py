"""`predict` refuses what would fail or destroy, before any work and without importing torch: an
output folder that is the input folder, an unwritable output, `--modalities ''`, existing outputs.

Each run is the console's `main` in a fresh interpreter, which then says whether torch (or
nnU-Net's inference code) was imported: evidence that the refusal came before the heavy imports,
whatever the machine's load.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATASET_ID
from tests.helpers_brats import checksums

MODEL = ["-d", str(DATASET_ID), "-c", "3d_fullres", "-tr", "HolderMITrainer_smoke", "-device", "cpu",
         "-npp", "0", "-nps", "0", "--disable_progress_bar"]
HEAVY = ("torch", "nnunetv2.inference.predict_from_raw_data")
_MAIN = """
import json, sys
from nnunet_holder import cli
try:
    status, refusal = cli.main(sys.argv[1:]), None
except SystemExit as e:
    status, refusal = e.code, str(e.code)
heavy = [m for m in {heavy!r} if m in sys.modules]
print("RESULT " + json.dumps({{"status": status, "refusal": refusal, "heavy": heavy}}))
"""


def _predict(args: list[str], env: dict) -> dict:
    """`nnunet-holder predict ARGS` in a fresh interpreter: its status, refusal and heavy imports."""
    proc = subprocess.run(
        [sys.executable, "-c", _MAIN.format(heavy=HEAVY), "predict", *args],
        env=env, capture_output=True, text=True, timeout=600,
    )
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, f"no result (exit {proc.returncode})\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(results[-1][len("RESULT "):])


def _refused(args: list[str], env: dict, *expected: str) -> str:
    result = _predict(args, env)
    refusal = result["refusal"]
    assert refusal is not None and result["status"] not in (0, None), result
    assert "\n" not in refusal and all(e in refusal for e in expected), refusal
    assert result["heavy"] == [], f"refused after importing {result['heavy']}"
    return refusal


@pytest.fixture
def pat_folder(trained, tmp_path) -> Path:
    """The issue's folder: a case `pat` and a case `pat_0002`, so that `pat_0002.nii.gz` is pat's T2."""
    src = trained["root"] / "raw" / trained["name"] / "imagesTs"
    folder = tmp_path / "cases"
    folder.mkdir()
    for case, source in (("pat", "tiny_008"), ("pat_0002", "tiny_009")):
        for c in range(4):
            shutil.copy(src / f"{source}_{c:04d}.nii.gz", folder / f"{case}_{c:04d}.nii.gz")
    return folder


@pytest.mark.parametrize("flag", [[], ["--overwrite"], ["--continue_prediction"]], ids=["plain", "ow", "c"])
def test_output_folder_equal_to_the_input_folder_is_refused(trained, pat_folder, flag) -> None:
    before = checksums(pat_folder)
    _refused(["-i", str(pat_folder), "-o", str(pat_folder), *MODEL, *flag], trained["env"],
             f"-o {pat_folder} is the input folder", "pat_0002.nii.gz")
    assert checksums(pat_folder) == before  # pat's T2 is still pat's T2, and nothing was added


def test_an_output_folder_sharing_a_file_with_the_input_is_refused(trained, pat_folder, tmp_path) -> None:
    link = tmp_path / "link_to_cases"
    link.symlink_to(pat_folder, target_is_directory=True)
    _refused(["-i", str(pat_folder), "-o", str(link), *MODEL, "--overwrite"], trained["env"], "input folder")
    out = tmp_path / "out"
    out.mkdir()
    os.link(pat_folder / "pat_0002.nii.gz", out / "pat_0002.nii.gz")  # a hard link under an output's name
    before = checksums(pat_folder)
    _refused(["-i", str(pat_folder), "-o", str(out), *MODEL, "--overwrite"], trained["env"],
             f"pat_0002.nii.gz is the input file {pat_folder / 'pat_0002.nii.gz'}")
    assert checksums(pat_folder) == before


def _read_only_folder(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    # root writes into any folder whatever its mode; the sysctl tree is a read-only mount in containers
    if not os.access("/proc/sys", os.W_OK):
        return Path("/proc/sys")
    pytest.skip("running as root with a writable /proc/sys: no read-only folder to test with")


def test_unwritable_output_is_refused_in_one_line_before_any_work(trained, pat_folder, tmp_path) -> None:
    args = ["-i", str(pat_folder), *MODEL]
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a regular file")
    _refused(["-o", str(a_file / "out"), *args], trained["env"], f"{a_file} is a file")
    _refused(["-o", str(a_file), *args], trained["env"], f"-o {a_file}: exists and is not a folder")
    read_only = _read_only_folder(tmp_path)
    _refused(["-o", str(read_only / "out"), *args], trained["env"], f"cannot create a folder in {read_only}")
    assert a_file.read_text() == "a regular file"


def test_existing_outputs_are_refused_without_importing_torch(trained, pat_folder, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "pat.nii.gz").write_bytes(b"an earlier segmentation")
    _refused(["-i", str(pat_folder), "-o", str(out), *MODEL], trained["env"], "already holds segmentations")
    assert (out / "pat.nii.gz").read_bytes() == b"an earlier segmentation"


@pytest.mark.parametrize("spec", ["", ",", " , "])
def test_modalities_naming_none_is_refused(trained, pat_folder, tmp_path, spec: str) -> None:
    out = tmp_path / "out"
    _refused(["-i", str(pat_folder), "-o", str(out), *MODEL, "--modalities", spec], trained["env"],
             "names no modality", "leave the option out")
    assert not out.exists()
