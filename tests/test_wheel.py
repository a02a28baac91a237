"""An installed wheel behaves like a checkout: built from this source and installed into a folder of
its own, the package finds every data file it reads (the demo's record summary, the trainer shim
folder) without the repository's docs/, and no module builds a path into docs/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_an_installed_wheel_needs_no_repository_files(tmp_path):
    # built from a copy of the tracked files, so no build/ or egg-info of the checkout takes part
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    for name in tracked.stdout.splitlines():
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    sources = list((target / "nnunet_holder").rglob("*.py"))
    reading_docs = [p for p in sources if re.search(r"""["']docs["']\s*[/)]""", p.read_text())]
    assert not reading_docs, f"modules that build a path into docs/: {reading_docs}"
    check = (
        "import nnunet_holder, pathlib;"
        "from nnunet_holder.demo import recorded_summary, HOLDER, BASELINE, DROPOUT;"
        "from nnunet_holder.trainers.overrides import DEMO;"
        "from nnunet_holder.trainer_path import trainer_path;"
        "assert str(target) in nnunet_holder.__file__, nnunet_holder.__file__;"
        "spreads, gains = recorded_summary([HOLDER, BASELINE, DROPOUT], DEMO['num_epochs']);"
        "assert set(spreads) == set(gains) == {HOLDER, BASELINE, DROPOUT}, (spreads, gains);"
        "assert any(pathlib.Path(trainer_path()).glob('*.py'))"
    ).replace("str(target)", repr(str(target)))
    env = {**os.environ, "PYTHONPATH": str(target)}
    subprocess.run([sys.executable, "-c", check], check=True, env=env, cwd=tmp_path)
