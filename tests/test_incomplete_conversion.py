"""Incomplete training cases into nnU-Net datasets: `convert-brats --train-incomplete`, `synth
--incomplete` and `fill-missing` write zero-filled files and the per-case record, nnU-Net's own
integrity check accepts the result, bad cases are refused by name and the source is never touched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from nnunet_holder.conversion import convert_brats
from nnunet_holder.conversion.fill_missing import fill_missing
from nnunet_holder.conversion.images import geometry_difference, read_geometry

from nnunet_holder.availability import ABSENT_KEY
from nnunet_holder.synthetic import generate_dataset
from tests.helpers_brats import checksums, file_path, make_case, read_array, write_volume
from tests.helpers_nnunet import make_raw_dataset, nnunet_env, run_cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = nnunet_env(tmp_path / "nnunet")
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(key, values[key])
    return values


def _zero_file_matches(zero: Path, reference: Path) -> None:
    assert not read_array(zero).any()
    assert geometry_difference(read_geometry(zero), read_geometry(reference)) is None


def test_train_incomplete_keeps_incomplete_cases_in_imagestr_and_records_them(tmp_path: Path, env) -> None:
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    make_case(src / "BraTS2021_00001", "2018", rng)
    no_t1ce = make_case(src / "BraTS2021_00002", "2018", rng, omit=("T1ce",))
    make_case(src / "BraTS2021_00003", "2018", rng, omit=("T1ce", "FLAIR"))
    make_case(src / "BraTS2021_00004", "2018", rng, omit=("seg",))  # no label: cannot train
    make_case(src / "BraTS2021_00005", "2018", rng, omit=("T1", "T1ce", "T2", "FLAIR"))  # no image at all
    moved = make_case(src / "BraTS2021_00006", "2018", rng, omit=("T2",))["T1ce"]
    write_volume(moved, read_array(moved), spacing=(1.0, 1.0, 2.0))  # disagrees with its other files
    make_case(src / "BraTS2021_00007", "2018", rng, omit=("T2",))  # a test case
    before = checksums(src)

    default = convert_brats(src, 40, test_cases=["BraTS2021_00007"], progress=False, num_processes=1)
    assert default.training_cases == ["BraTS2021_00001"]  # today's default: incomplete cases left out

    result = convert_brats(
        src, 41, test_cases=["BraTS2021_00007"], incomplete_training=True, progress=False, num_processes=1
    )
    assert checksums(src) == before
    assert result.training_cases == ["BraTS2021_00001", "BraTS2021_00002", "BraTS2021_00003"]
    assert result.test_cases == ["BraTS2021_00007"]
    out = Path(env["nnUNet_raw"]) / "Dataset041_BraTS"
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset[ABSENT_KEY] == {"BraTS2021_00002": ["T1ce"], "BraTS2021_00003": ["T1ce", "FLAIR"]}
    assert dataset["numTraining"] == 3
    assert len(list((out / "imagesTr").iterdir())) == 12  # a file per channel of every training case
    _zero_file_matches(out / "imagesTr" / "BraTS2021_00002_0001.nii.gz", no_t1ce["T1"])
    assert sorted(p.name for p in (out / "imagesTs").iterdir()) == [
        f"BraTS2021_00007_{c:04d}.nii.gz" for c in (0, 1, 3)
    ]
    by_case = {p.case: p for p in result.problems if p.level == "error"}
    assert by_case["BraTS2021_00005"].file == str(src / "BraTS2021_00005")
    assert "no image file at all" in by_case["BraTS2021_00005"].message
    assert by_case["BraTS2021_00006"].file == str(moved)
    assert "geometry mismatch" in by_case["BraTS2021_00006"].message
    no_label = [p for p in result.problems if p.case == "BraTS2021_00004"]
    assert [p.level for p in no_label] == ["warning"] and "missing seg" in no_label[0].message


def test_synthetic_incomplete_archive_converts_and_passes_nnunets_integrity_check(
    tmp_path: Path, env
) -> None:
    complete = generate_dataset(tmp_path / "complete", 6, spacing=8.0, seed=5, progress=False)
    src = generate_dataset(
        tmp_path / "synth", 6, spacing=8.0, seed=5, progress=False, incomplete_fraction=0.5, keep_complete=2
    )
    absent = json.loads((src / "synthetic_dataset.json").read_text())["absent"]
    assert len(absent) == 2 and all(1 <= len(roles) <= 2 for roles in absent.values())
    for case, roles in absent.items():
        for role in roles:
            assert not file_path(src / case, case, "2018", role).exists()
    same = {k: v for k, v in checksums(complete).items() if k in checksums(src) and "synthetic" not in k}
    assert same == {k: v for k, v in checksums(src).items() if k in same}  # the images do not change
    assert not set(absent) & {"BraTS20_Training_005", "BraTS20_Training_006"}  # the test cases

    convert_brats(src, 42, test_cases=2, incomplete_training=True, progress=False, num_processes=1)
    dataset_json = Path(env["nnUNet_raw"]) / "Dataset042_BraTS" / "dataset.json"
    assert json.loads(dataset_json.read_text())[ABSENT_KEY] == absent
    run_cli(["nnUNetv2_extract_fingerprint", "-d", "42", "--verify_dataset_integrity", "-np", "1"], env)


def _tiny_with_missing(env: dict[str, str], dataset_id: int, channel_names: dict | None = None) -> Path:
    folder = make_raw_dataset(Path(env["nnUNet_raw"]), dataset_id, num_train=6, num_test=1)
    if channel_names is not None:
        dataset = json.loads((folder / "dataset.json").read_text())
        (folder / "dataset.json").write_text(json.dumps({**dataset, "channel_names": channel_names}))
    for name in ("tiny_001_0001", "tiny_002_0001", "tiny_002_0003"):
        (folder / "imagesTr" / f"{name}.nii.gz").unlink()
    return folder


def test_fill_missing_copies_zero_fills_and_records_and_refuses_bad_cases(env) -> None:
    src = _tiny_with_missing(env, 43)
    for c in range(4):
        (src / "imagesTr" / f"tiny_003_{c:04d}.nii.gz").unlink()  # no image at all
    shifted = src / "imagesTr" / "tiny_004_0002.nii.gz"
    image = sitk.ReadImage(str(shifted))
    image.SetOrigin((5.0, 0.0, 0.0))
    sitk.WriteImage(image, str(shifted))
    before = checksums(src)

    result = fill_missing(43, 44)
    assert checksums(src) == before
    assert result.training_cases == ["tiny_000", "tiny_001", "tiny_002", "tiny_005"]
    assert result.absent == {"tiny_001": ["T1ce"], "tiny_002": ["T1ce", "FLAIR"]}
    errors = {p.case: p for p in result.problems if p.level == "error"}
    assert "no channel file at all" in errors["tiny_003"].message
    assert errors["tiny_004"].file == str(shifted) and "geometry differs" in errors["tiny_004"].message
    out = result.output_dir
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset[ABSENT_KEY] == result.absent and dataset["numTraining"] == 4
    _zero_file_matches(out / "imagesTr" / "tiny_002_0003.nii.gz", src / "imagesTr" / "tiny_002_0000.nii.gz")
    assert (out / "imagesTs" / "tiny_006_0000.nii.gz").is_file()
    with pytest.raises(Exception, match="already exists"):
        fill_missing(43, 44)

    # the filled copy is its own valid source: its record matches its zero-filled files
    assert fill_missing(44, 45).absent == result.absent


def test_fill_missing_refuses_records_that_contradict_the_files_and_missing_ct(env) -> None:
    src = _tiny_with_missing(env, 46)
    dataset = json.loads((src / "dataset.json").read_text())
    dataset[ABSENT_KEY] = {"tiny_001": ["T1ce"], "tiny_002": ["T1ce"], "tiny_000": ["T2"]}
    (src / "dataset.json").write_text(json.dumps(dataset))
    result = fill_missing(46, 47)
    assert result.training_cases == ["tiny_001", "tiny_003", "tiny_004", "tiny_005"]
    errors = {p.case: p for p in result.problems if p.level == "error"}
    assert errors["tiny_000"].file == str(src / "imagesTr" / "tiny_000_0002.nii.gz")
    assert "names channel 'T2', but this file holds an image" in errors["tiny_000"].message
    assert errors["tiny_002"].file.endswith("tiny_002_0003")
    assert "'FLAIR' does not exist, but nnunet_holder_absent does not name it" in errors["tiny_002"].message

    ct = _tiny_with_missing(env, 48, {"0": "T1", "1": "CT", "2": "T2", "3": "FLAIR"})
    shutil.rmtree(ct / "imagesTs")
    result = fill_missing(48, 49)
    assert result.training_cases == ["tiny_000", "tiny_003", "tiny_004", "tiny_005"]
    assert "CTNormalization" in next(p.message for p in result.problems if p.case == "tiny_001")
