"""`nnUNet_seed`: the same seed repeats a training's loss curve and subset draws, another seed
changes them, and `--c` continues a seeded run exactly.

Trainers are built in-process from the tiny dataset's real plans and trained for a few real
nnU-Net steps (`on_train_start`, then `train_step` on batches of nnU-Net's own data loader and
augmentation, in the main process as `nnUNet_n_proc_DA=0` makes it). The resume test runs the
real `nnUNetv2_train` twice: once through, and once resumed with `--c` from a checkpoint of the
first run.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from nnunet_holder.trainers import HolderMITrainer_smoke, nnUNetTrainer_smoke
from nnunet_holder.trainers.holder_mi import draw_step_subsets, single_modality_probabilities
from nnunet_holder.trainers.seeding import (
    RANDOM_STATE_KEY,
    seed_everything,
    seed_from_environment,
    worker_seeds,
)

from nnunet_holder.predict.locate import model_folder_in
from nnunet_holder.subsets import all_subsets
from tests.conftest import DATASET_ID, train_env
from tests.helpers_nnunet import CONFIGURATION, PLANS, experiment_variant, run_cli

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
    # HolderMITrainer_smoke trains every subset each step (no subset draw): the seed reaches its
    # weights, batches and augmentation; the subset draws are tested below
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


def _drawn_subsets(dataset: dict, monkeypatch, seed: int | None, rank_seed: int | None = None) -> list:
    """The subsets HolderMITrainer_sample4 (an experiment variant: 4 subsets per step) passes its
    network in 3 steps of epochs 0 and 1.

    `rank_seed`: the global generators reseeded after the build, as another DDP rank's are.
    """
    if seed is None:
        monkeypatch.delenv("nnUNet_seed", raising=False)
    else:
        monkeypatch.setenv("nnUNet_seed", str(seed))
    trainer = _trainer(dataset, experiment_variant("HolderMITrainer_sample4"))
    trainer.initialize()
    dl_train, _ = trainer.get_dataloaders()
    batch = next(dl_train)
    if rank_seed is not None:
        seed_everything(rank_seed)
    subsets = all_subsets(4)
    drawn = []
    trainer.network.register_forward_pre_hook(
        lambda module, args: drawn.append(
            tuple(subsets[trainer._all_mask.tolist().index(row)] for row in args[1].tolist())
        )
    )
    trainer.network.train()
    for epoch in (0, 1):
        trainer.current_epoch = epoch
        trainer.on_epoch_start()
        for _ in range(3):
            trainer.train_step(batch)
    return drawn


def test_subset_draws_follow_the_seed_and_not_the_rank(in_nnunet_env, monkeypatch):
    first = _drawn_subsets(in_nnunet_env, monkeypatch, 7)
    assert all(len(step) == 4 and len(set(step)) == 4 and step[-1] == (0, 1, 2, 3) for step in first)
    assert len(set(first)) > 1  # the draws change from step to step
    # another rank: its global generators are seeded with seed + rank, its subset draw is the same
    assert _drawn_subsets(in_nnunet_env, monkeypatch, 7, rank_seed=8) == first
    assert _drawn_subsets(in_nnunet_env, monkeypatch, 8) != first
    # unseeded: the documented fixed sequence, keyed by epoch and step alone
    assert _drawn_subsets(in_nnunet_env, monkeypatch, None) == _drawn_subsets(
        in_nnunet_env, monkeypatch, None, rank_seed=1
    )


def test_seeded_subset_sequences_differ_between_seeds():
    def sequence(seed):
        return [draw_step_subsets(15, 4, seed, e, s) for e in range(3) for s in range(20)]

    runs = [sequence(seed) for seed in range(5)]
    assert all(runs[i] != runs[j] for i in range(5) for j in range(i))
    assert sequence(3) == runs[3]
    # the training and the validation loss draw different subsets at the same step
    assert [draw_step_subsets(15, 4, 0, 0, s, "val") for s in range(20)] != runs[0][:20]
    counts = np.bincount([i for step in sequence(11) for i in step[:-1]], minlength=14)
    assert counts.min() > 0  # every partial subset gets drawn


def test_single_modality_probabilities_give_the_singles_their_share():
    subsets = all_subsets(4)
    p = single_modality_probabilities(subsets, 0.5)
    assert len(p) == 14 and p.sum() == pytest.approx(1)
    assert p[[len(s) == 1 for s in subsets[:-1]]] == pytest.approx([0.125] * 4)
    assert p[[len(s) > 1 for s in subsets[:-1]]] == pytest.approx([0.05] * 10)
    for share in (0, 1, 1.5):
        with pytest.raises(ValueError, match="single_modality_share"):
            single_modality_probabilities(subsets, share)


def test_single_modality_share_weighs_the_training_draw_only(in_nnunet_env, monkeypatch):
    monkeypatch.setenv("nnUNet_seed", "0")
    variant = experiment_variant("HolderMITrainer_inputFusion_distill_singlesHalf_demo")
    trainer = _trainer(in_nnunet_env, variant)
    trainer.initialize()
    singles = {i for i, s in enumerate(all_subsets(4)) if len(s) == 1}

    def singles_share(stream: str) -> float:
        drawn = []
        for epoch in range(20):
            trainer.current_epoch = epoch
            drawn += [trainer._step_subsets(stream, step) for step in range(50)]
        assert all(len(step) == 2 and step[-1] == 14 for step in drawn)
        return np.mean([step[0] in singles for step in drawn])

    # 1000 draws: the standard error of a share near 0.3-0.5 is about 0.015
    assert singles_share("train") == pytest.approx(0.5, abs=0.06)
    assert singles_share("val") == pytest.approx(4 / 14, abs=0.06)  # the validation loss: uniform
    trainer.single_modality_share = None
    assert singles_share("train") == pytest.approx(4 / 14, abs=0.06)


def test_augmentation_workers_get_seeds_derived_from_the_run_seed(in_nnunet_env, monkeypatch):
    monkeypatch.setenv("nnUNet_seed", "3")
    monkeypatch.setenv("nnUNet_n_proc_DA", "2")
    trainer = _trainer(in_nnunet_env, nnUNetTrainer_smoke)
    trainer.current_epoch = 4  # as a `--c` resume at epoch 4 has it when the loaders start
    trainer.on_train_start()
    try:
        assert trainer.dataloader_train.seeds == worker_seeds(3, 0, "train", 2, 4)
        assert trainer.dataloader_val.seeds == worker_seeds(3, 0, "val", 1, 4)
    finally:
        trainer.dataloader_train._finish()
        trainer.dataloader_val._finish()
    assert len(set(worker_seeds(3, 0, "train", 8) + worker_seeds(3, 1, "train", 8))) == 16
    # a resume draws new worker streams, not those of epoch 0; epoch 0 keeps the earlier seeds
    assert not set(worker_seeds(3, 0, "train", 2, 4)) & set(worker_seeds(3, 0, "train", 2))
    earlier = np.random.SeedSequence([3, 0, 0]).generate_state(2)
    assert worker_seeds(3, 0, "train", 2) == [int(s) for s in earlier]


PROBE = "HolderMITrainer_sample4_resumeProbe"
PROBE_MODULE = f'''
import shutil

from nnunet_holder.trainers import HolderMITrainer


class {PROBE}(HolderMITrainer):
    """4 subsets drawn per step (as experiments/variants' HolderMITrainer_sample4), on a short seeded
    schedule that writes checkpoint_latest after every epoch and keeps a copy."""

    subsets_per_step = 4
    overrides = {{"num_epochs": 3, "num_iterations_per_epoch": 4, "num_val_iterations_per_epoch": 2,
                 "save_every": 1, "plot_every": 10}}

    def save_checkpoint(self, filename):
        super().save_checkpoint(filename)
        if filename.endswith("checkpoint_latest.pth"):
            shutil.copy(filename, filename.replace("latest", f"epoch{{self.current_epoch}}"))
'''


def test_a_resumed_seeded_run_continues_the_run_it_resumes(tiny_dataset, tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "resume_probe.py").write_text(PROBE_MODULE)
    env = {
        **train_env(tiny_dataset["env"]),
        "nnUNet_seed": "5",
        "nnUNet_extTrainer": os.pathsep.join([str(ext), tiny_dataset["env"]["nnUNet_extTrainer"]]),
    }
    command = ["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", PROBE, "-device", "cpu"]
    model = model_folder_in(Path(), tiny_dataset["name"], PROBE, PLANS, CONFIGURATION) / "fold_0"
    through, resumed = tmp_path / "through", tmp_path / "resumed"
    run_cli(command, {**env, "nnUNet_results": str(through)}, timeout=900)
    # the run interrupted after epoch 0: its folder as it was then, checkpoint_latest of epoch 0
    shutil.copytree(through, resumed)
    fold = resumed / model
    (fold / "checkpoint_final.pth").unlink()
    shutil.copy(fold / "checkpoint_epoch0.pth", fold / "checkpoint_latest.pth")
    logs_before = set(fold.glob("training_log_*.txt"))
    run_cli([*command, "--c"], {**env, "nnUNet_results": str(resumed)}, timeout=900)

    (log,) = set(fold.glob("training_log_*.txt")) - logs_before
    assert re.findall(r": Epoch (\d+)\s*$", log.read_text(), flags=re.MULTILINE) == ["1", "2"]
    assert "nnUNet_seed=5: the random streams continue from" in log.read_text()
    a, b = (
        torch.load(r / model / "checkpoint_final.pth", map_location="cpu", weights_only=False)
        for r in (through, resumed)
    )
    assert b[RANDOM_STATE_KEY]["seed"] == 5 and len(b[RANDOM_STATE_KEY]["ranks"]) == 1
    # epochs 1 and 2 of the resumed run are those of the uninterrupted run: same batches,
    # augmentation and subsets; one thread count in both processes, so the same float rounding
    for key in ("train_losses", "val_losses", "mean_fg_dice", "mean_subset_dice"):
        assert b["logging"][key] == a["logging"][key], key
    for name, value in a["network_weights"].items():
        assert torch.equal(b["network_weights"][name], value), name


@pytest.mark.parametrize("value", ["x", "-1", "1.5"])
def test_bad_seed_is_refused(monkeypatch, value):
    monkeypatch.setenv("nnUNet_seed", value)
    with pytest.raises(SystemExit, match="nnUNet_seed"):
        seed_from_environment()
