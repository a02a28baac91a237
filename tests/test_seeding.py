"""`nnUNet_seed`: the same seed repeats a training's loss curve, another seed changes it.

Trainers are built in-process from the tiny dataset's real plans and trained for a few real
nnU-Net steps (`on_train_start`, then `train_step` on batches of nnU-Net's own data loader and
augmentation, in the main process as `nnUNet_n_proc_DA=0` makes it).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import torch
from nnunet_holder.trainers import HolderMITrainer_smoke, nnUNetTrainer_smoke
from nnunet_holder.trainers.seeding import seed_from_environment, worker_seeds

STEPS = 3


def _trainer(dataset: dict, cls):
    folder = Path(os.environ["nnUNet_preprocessed"]) / dataset["name"]
    plans = copy.deepcopy(json.loads((folder / "nnUNetPlans.json").read_text()))
    plans["continue_training"] = False  # what nnUNetv2_train's get_trainer_from_args adds
    dataset_json = json.loads((folder / "dataset.json").read_text())
    return cls(plans, "3d_fullres", 0, dataset_json, torch.device("cpu"))


def _loss_curve(dataset: dict, cls, monkeypatch, seed: int | None) -> list[float]:
    if seed is None:
        monkeypatch.delenv("nnUNet_seed", raising=False)
    else:
        monkeypatch.setenv("nnUNet_seed", str(seed))
    trainer = _trainer(dataset, cls)
    trainer.on_train_start()
    trainer.network.train()
    return [float(trainer.train_step(next(trainer.dataloader_train))["loss"]) for _ in range(STEPS)]


def test_same_seed_same_loss_curve_other_seed_other_curve(in_nnunet_env, monkeypatch):
    # HolderMITrainer: also draws its step's subsets from the seeded torch generator
    first = _loss_curve(in_nnunet_env, HolderMITrainer_smoke, monkeypatch, 7)
    again = _loss_curve(in_nnunet_env, HolderMITrainer_smoke, monkeypatch, 7)
    other = _loss_curve(in_nnunet_env, HolderMITrainer_smoke, monkeypatch, 8)
    # same process, same thread count: PyTorch's CPU kernels repeat bit for bit
    assert again == pytest.approx(first, rel=1e-6, abs=1e-7)
    assert max(abs(a - b) for a, b in zip(first, other, strict=True)) > 1e-3


def test_unseeded_runs_differ(in_nnunet_env, monkeypatch):
    a = _loss_curve(in_nnunet_env, nnUNetTrainer_smoke, monkeypatch, None)
    b = _loss_curve(in_nnunet_env, nnUNetTrainer_smoke, monkeypatch, None)
    assert a != b


def test_augmentation_workers_get_seeds_derived_from_the_run_seed(in_nnunet_env, monkeypatch):
    monkeypatch.setenv("nnUNet_seed", "3")
    monkeypatch.setenv("nnUNet_n_proc_DA", "2")
    trainer = _trainer(in_nnunet_env, nnUNetTrainer_smoke)
    trainer.on_train_start()
    try:
        assert trainer.dataloader_train.seeds == worker_seeds(3, 0, "train", 2)
        assert trainer.dataloader_val.seeds == worker_seeds(3, 0, "val", 1)
    finally:
        trainer.dataloader_train._finish()
        trainer.dataloader_val._finish()
    assert len(set(worker_seeds(3, 0, "train", 8) + worker_seeds(3, 1, "train", 8))) == 16


@pytest.mark.parametrize("value", ["x", "-1", "1.5"])
def test_bad_seed_is_refused(monkeypatch, value):
    monkeypatch.setenv("nnUNet_seed", value)
    with pytest.raises(SystemExit, match="nnUNet_seed"):
        seed_from_environment()
