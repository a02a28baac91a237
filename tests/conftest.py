"""Shared fixtures: one tiny BraTS-like dataset planned and preprocessed by the real nnU-Net."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers_nnunet import make_raw_dataset, nnunet_env, run_cli

DATASET_ID = 501


@pytest.fixture(scope="session")
def nnunet_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nnunet")


@pytest.fixture(scope="session")
def env(nnunet_root) -> dict[str, str]:
    return nnunet_env(nnunet_root)


@pytest.fixture(scope="session")
def tiny_dataset(nnunet_root, env) -> dict:
    """Dataset501_Tiny: 8 training + 3 test cases, planned and preprocessed for 3d_fullres."""
    make_raw_dataset(nnunet_root / "raw", DATASET_ID, num_train=8, num_test=3)
    # -npfp: nnU-Net's fingerprint step otherwise starts 8 spawned workers, each importing torch
    plan = ["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres"]
    run_cli([*plan, "-np", "1", "-npfp", "1"], env)
    return {"id": DATASET_ID, "name": f"Dataset{DATASET_ID:03d}_Tiny", "root": nnunet_root, "env": env}


@pytest.fixture
def in_nnunet_env(tiny_dataset, monkeypatch, tmp_path):
    """nnU-Net's environment for in-process use of its classes; results go to a fresh folder."""
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_extTrainer", "nnUNet_def_n_proc"):
        monkeypatch.setenv(key, tiny_dataset["env"][key])
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    return tiny_dataset


def train_env(env: dict[str, str]) -> dict[str, str]:
    # nnU-Net's augmentation in the main process: no worker start-up on the 2-core CI machine.
    # Only for training: planning crashes with nnUNet_n_proc_DA=0 (NOTES.md §5).
    return {**env, "nnUNet_n_proc_DA": "0"}


def train_command(trainer: str, *extra: str) -> list[str]:
    """`nnUNetv2_train` of the tiny dataset, fold 0, on the CPU."""
    return ["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", trainer, "-device", "cpu", *extra]


@pytest.fixture(scope="session")
def trained(tiny_dataset) -> dict:
    """HolderMITrainer_smoke trained on fold 0 through the real `nnUNetv2_train` (CPU)."""
    proc = run_cli(
        train_command("HolderMITrainer_smoke"),
        train_env(tiny_dataset["env"]),
        timeout=900,
    )
    fold = (
        tiny_dataset["root"]
        / "results"
        / tiny_dataset["name"]
        / "HolderMITrainer_smoke__nnUNetPlans__3d_fullres"
        / "fold_0"
    )
    return {**tiny_dataset, "fold": fold, "trainer": "HolderMITrainer_smoke", "stdout": proc.stdout}
