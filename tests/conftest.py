"""Shared fixtures: one tiny BraTS-like dataset planned and preprocessed by the real nnU-Net.

The suite runs on pytest-xdist workers (`make test`: `-n 2`), and each worker is a pytest session
of its own. The session fixtures that cost real nnU-Net runs (planning the dataset, training the
smoke model) therefore work in one folder that all workers of a run share, and the first worker to
need one does the work under a file lock while the others wait for it and reuse its output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from nnunet_holder.predict.locate import model_folder_in
from tests.helpers_nnunet import CONFIGURATION, PLANS, make_raw_dataset, nnunet_env, run_cli

DATASET_ID = 501

FIRST = (
    "test_label_dataset.py",  # plans and trains a dataset of its own: runs while the other worker plans
    "test_predict_options.py",
    "test_provenance.py",  # trains a second model
    "test_predict.py",
    "test_trainer.py",
    "test_evaluate_protocol.py",
    "test_ddp_trainer.py",
    "test_variant_settings.py",
)
"""The longest test files, longest first: handed out first, they do not all land at the end of a
worker's queue (pytest-xdist's `--dist loadfile` gives out files in collection order)."""


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker gets its share of the cores as torch threads, and so do the processes it
    starts (`THREAD_POOL_VARIABLES`, which `compare` also sets per slot). With torch's default of
    a thread per core in both workers, small-tensor tests stalled behind spinning threads, many
    times slower in the suite than alone."""
    workers = getattr(config, "workerinput", {}).get("workercount")
    if not workers:
        return
    import os

    import torch

    from nnunet_holder.compare.runs import THREAD_POOL_VARIABLES, usable_cores

    share = max(1, usable_cores() // workers)
    torch.set_num_threads(share)
    for name in THREAD_POOL_VARIABLES:  # not nnUNet_def_n_proc: the fixtures choose nnU-Net's workers
        os.environ.setdefault(name, str(share))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return FIRST.index(name) if name in FIRST else len(FIRST)

    items.sort(key=rank)  # stable: the order within a file and among the other files is kept


def run_once(root: Path, name: str, work: Callable[[], None]) -> None:
    """`work()` once per test run, whichever worker gets here first; the others wait for it."""
    with FileLock(str(root / f".{name}.lock")):
        done = root / f".{name}.done"
        if not done.exists():
            work()
            done.touch()


@pytest.fixture(scope="session")
def nnunet_root(tmp_path_factory, worker_id) -> Path:
    if worker_id == "master":  # no xdist: a session of its own
        return tmp_path_factory.mktemp("nnunet")
    # the workers' base folders are siblings in one folder per run: share a folder beside them
    root = tmp_path_factory.getbasetemp().parent / "nnunet_shared"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="session")
def env(nnunet_root) -> dict[str, str]:
    return nnunet_env(nnunet_root)


@pytest.fixture(scope="session")
def tiny_dataset(nnunet_root, env) -> dict:
    """Dataset501_Tiny: 8 training + 3 test cases, planned and preprocessed for 3d_fullres."""

    def plan() -> None:
        make_raw_dataset(nnunet_root / "raw", DATASET_ID, num_train=8, num_test=3)
        # -npfp: nnU-Net's fingerprint step otherwise starts 8 spawned workers, each importing torch
        run_cli(["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "1",
                 "-npfp", "1"], env)

    run_once(nnunet_root, "tiny_dataset", plan)
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
    # Only for training: planning crashes with nnUNet_n_proc_DA=0 (README, Troubleshooting).
    return {**env, "nnUNet_n_proc_DA": "0"}


def train_command(trainer: str, *extra: str) -> list[str]:
    """`nnUNetv2_train` of the tiny dataset, fold 0, on the CPU."""
    return ["nnUNetv2_train", str(DATASET_ID), CONFIGURATION, "0", "-tr", trainer, "-device", "cpu", *extra]


@pytest.fixture(scope="session")
def trained(tiny_dataset) -> dict:
    """HolderMITrainer_smoke trained on fold 0 through the real `nnUNetv2_train` (CPU)."""
    run_once(
        tiny_dataset["root"],
        "trained",
        lambda: run_cli(train_command("HolderMITrainer_smoke"), train_env(tiny_dataset["env"]), timeout=900),
    )
    model = model_folder_in(
        tiny_dataset["root"] / "results", tiny_dataset["name"], "HolderMITrainer_smoke", PLANS, CONFIGURATION
    )
    fold = model / "fold_0"
    return {**tiny_dataset, "fold": fold, "trainer": "HolderMITrainer_smoke"}
