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
    run_cli(["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "1",
             "--verify_dataset_integrity"], env)
    return {"id": DATASET_ID, "name": f"Dataset{DATASET_ID:03d}_Tiny", "root": nnunet_root, "env": env}


@pytest.fixture
def in_nnunet_env(tiny_dataset, monkeypatch):
    """The nnU-Net environment variables for in-process use of nnU-Net classes."""
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer", "nnUNet_def_n_proc"):
        monkeypatch.setenv(key, tiny_dataset["env"][key])
    return tiny_dataset

