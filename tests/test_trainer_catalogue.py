"""The exported trainer catalogue: what nnU-Net finds, the generated schedules, the names in use.

The package exports the trainers a user chooses between (`ALL_TRAINERS`); nnU-Net's own lookup
must find each as the very class the package holds (one identity for pickling and checkpoints).
The schedule variants are generated from one table and change nothing but their schedule. Every
trainer name the project's scripts, code and guide use resolves to an exported trainer or one of
nnU-Net's own, and every name in a record's commands also to an experiment variant
(experiments/variants, the records' extra `nnUNet_extTrainer` folder) or a class the record defines.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import nnunetv2
import pytest
from nnunet_holder.trainers import ALL_TRAINERS, NETWORKS, PAPER_TABLES
from nnunet_holder.trainers.overrides import OverridesMixin
from nnunet_holder.trainers.schedules import NNUNET_OWN, SCHEDULE_VARIANTS, SCHEDULED, SCHEDULES
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

from tests.helpers_nnunet import EXPERIMENT_VARIANTS

REPO = Path(__file__).resolve().parents[1]
# a trainer name, not a prefix that code or a shell completes (`HolderMITrainer_${op}_small`) nor a
# model folder (`nnUNetTrainer__nnUNetPlans__3d_fullres`)
NAME = re.compile(r"\b(?:HolderMITrainer|nnUNetTrainer)(?:_?[A-Za-z0-9])*(?![\w{$])")
PRODUCT_FILES = (
    "Makefile",
    "experiments/*.sh",
    "experiments/*.py",
    "experiments/README.md",
    "benchmarks/*.py",
    "benchmarks/*.sh",
    "benchmarks/README.md",
    "nnunet_holder/**/*.py",
    "docs/guide/*.md",
    "docs/results.md",
    "docs/explanation.md",
    "README.md",
)
"""Files whose trainer names must be exported ones (or nnU-Net's own)."""


def _lookup(name: str) -> type:
    with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net prints every module it inspects
        return recursive_find_trainer_class_by_name(name)


def _class_names(folder: Path) -> set[str]:
    return {n for py in folder.rglob("*.py") for n in re.findall(r"^class (\w+)", py.read_text(), flags=re.M)}


def _files(patterns) -> list[Path]:
    return sorted({p for pattern in patterns for p in REPO.glob(pattern) if p.is_file()})


def test_nnunet_finds_every_exported_trainer_as_the_class_the_package_holds(env, monkeypatch):
    monkeypatch.setenv("nnUNet_extTrainer", env["nnUNet_extTrainer"])
    for cls in ALL_TRAINERS:
        assert _lookup(cls.__name__) is cls, cls.__name__


def test_the_catalogue_is_the_networks_the_paper_tables_and_their_schedules():
    names = [t.__name__ for t in ALL_TRAINERS]
    assert len(names) == len(set(names)) == len(NETWORKS) + len(PAPER_TABLES) + len(SCHEDULE_VARIANTS)
    # every network and nnU-Net's own trainer on every schedule, except what nnU-Net ships itself
    expected = {f"{t.__name__}_{s}" for t in SCHEDULED for s in SCHEDULES} - NNUNET_OWN
    assert {t.__name__ for t in SCHEDULE_VARIANTS} == expected
    assert set(NETWORKS) < set(SCHEDULED)


@pytest.mark.parametrize("variant", SCHEDULE_VARIANTS, ids=lambda c: c.__name__)
def test_a_schedule_variant_changes_its_schedule_and_nothing_else(variant):
    base_name, suffix = variant.__name__.rsplit("_", 1)
    base = next(t for t in SCHEDULED if t.__name__ == base_name)
    assert issubclass(variant, base) and issubclass(variant, OverridesMixin)
    parent_overrides = base.merged_overrides() if issubclass(base, OverridesMixin) else {}
    assert variant.merged_overrides() == {**parent_overrides, **SCHEDULES[suffix]}
    own = {k for k in vars(variant) if not k.startswith("__")}
    assert own == {"overrides"}, own


def test_the_schedules_nnunet_ships_are_its_own(env, monkeypatch):
    monkeypatch.setenv("nnUNet_extTrainer", env["nnUNet_extTrainer"])
    for name in NNUNET_OWN:
        assert _lookup(name).__module__.startswith("nnunetv2."), name
        assert name in _class_names(Path(nnunetv2.__path__[0]) / "training" / "nnUNetTrainer")


def test_every_trainer_the_project_names_is_exported_or_nnunets():
    known = {t.__name__ for t in ALL_TRAINERS} | _class_names(Path(nnunetv2.__path__[0]) / "training")
    files = _files(PRODUCT_FILES)
    assert REPO / "nnunet_holder" / "demo.py" in files and REPO / "Makefile" in files
    # a page may define its own example variant (`class NAME(...)` in a code block)
    named = {
        (p.relative_to(REPO), name)
        for p in files
        for name in NAME.findall(p.read_text())
        if f"class {name}(" not in p.read_text()
    }
    # the names the paper's scripts and the demo train are among those read
    read = {name for _, name in named}
    assert {"HolderMITrainer_paper", "HolderMITrainer_alpha1p05", "nnUNetTrainer_demo"} <= read
    unknown = sorted(f"{path}: {name}" for path, name in named if name not in known)
    assert not unknown, unknown


def test_every_trainer_in_a_records_commands_resolves():
    known = (
        {t.__name__ for t in ALL_TRAINERS}
        | _class_names(Path(nnunetv2.__path__[0]) / "training")
        | _class_names(EXPERIMENT_VARIANTS)
    )
    unknown = set()
    for record in _files(["docs/records/*.md"]):
        blocks = "\n".join(re.findall(r"```.*?```", record.read_text(), flags=re.S))
        defined = set(re.findall(r"^class (\w+)", blocks, flags=re.M))  # a record's own variants
        unknown |= {f"{record.name}: {n}" for n in NAME.findall(blocks) if n not in known | defined}
    # a file named after a trainer (`TRAINER_seed0.json`) reads as an unknown trainer too: name
    # such a file through a shell variable (`R=TRAINER; ... ${R}_seed0.json`)
    assert not unknown, sorted(unknown)
