"""Trainer paths beyond the default set-up: refused plans, channel names, checkpoint selection.

Trainers are built in-process from the tiny dataset's real nnU-Net plans, edited where a test
needs another set-up (the cascade, BatchNorm, CT normalisation, another channel order).
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest
import torch
from nnunet_holder.trainers import (
    HolderMITrainer_inputFusion_smoke,
    HolderMITrainer_smoke,
    nnUNetTrainerModalityDropout_smoke,
)

from nnunet_holder.subsets import all_subsets, subset_name


def _plans_and_dataset(dataset: dict) -> tuple[dict, dict]:
    folder = Path(os.environ["nnUNet_preprocessed"]) / dataset["name"]
    return (
        json.loads((folder / "nnUNetPlans.json").read_text()),
        json.loads((folder / "dataset.json").read_text()),
    )


def _trainer(dataset: dict, cls=HolderMITrainer_smoke, plans_edit=None, dataset_edit=None,
             configuration: str = "3d_fullres"):
    plans, dataset_json = _plans_and_dataset(dataset)
    plans, dataset_json = copy.deepcopy(plans), copy.deepcopy(dataset_json)
    plans["continue_training"] = False  # what nnUNetv2_train's get_trainer_from_args adds
    if plans_edit:
        plans_edit(plans)
    if dataset_edit:
        dataset_edit(dataset_json)
    trainer = cls(plans, configuration, 0, dataset_json, torch.device("cpu"))
    trainer.initialize()
    return trainer


def _add_cascade(plans: dict) -> None:
    plans["configurations"]["3d_cascade_fullres"] = {
        "inherits_from": "3d_fullres",
        "previous_stage": "3d_lowres",
    }


def _batchnorm(plans: dict) -> None:
    plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["norm_op"] = "torch.nn.BatchNorm3d"


def _ct_first_channel(plans: dict) -> None:
    plans["configurations"]["3d_fullres"]["normalization_schemes"][0] = "CTNormalization"
    # CT normalisation clips to these percentiles and subtracts the mean: zero becomes non-zero
    plans["foreground_intensity_properties_per_channel"]["0"].update(
        mean=50.0, std=10.0, percentile_00_5=5.0, percentile_99_5=100.0
    )


def test_the_cascade_is_refused(in_nnunet_env):
    with pytest.raises(NotImplementedError, match="does not support the cascade.*extra input channels"):
        _trainer(in_nnunet_env, plans_edit=_add_cascade, configuration="3d_cascade_fullres")


def test_batchnorm_plans_are_refused(in_nnunet_env):
    with pytest.raises(NotImplementedError, match="BatchNorm plans.*mix the modalities"):
        _trainer(in_nnunet_env, plans_edit=_batchnorm)


@pytest.mark.parametrize("cls", [HolderMITrainer_smoke, nnUNetTrainerModalityDropout_smoke])
def test_a_normalisation_that_moves_zero_is_refused(in_nnunet_env, cls):
    expected = r"keeps an all-zero \(missing\) channel at zero; channels 0 \(T1: CTNormalization\)"
    with pytest.raises(NotImplementedError, match=expected):
        _trainer(in_nnunet_env, cls=cls, plans_edit=_ct_first_channel)


@pytest.mark.parametrize("cls", [HolderMITrainer_smoke, HolderMITrainer_inputFusion_smoke])
def test_a_single_modality_dataset_is_refused_at_initialize(in_nnunet_env, cls):
    with pytest.raises(NotImplementedError) as refused:
        _trainer(in_nnunet_env, cls=cls, dataset_edit=lambda d: d.update(channel_names={"0": "T1"}))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{cls.__name__} needs at least 2 modalities")
    assert in_nnunet_env["name"] in message and "has 1 (T1)" in message


def _one_epoch(trainer) -> None:
    """nnU-Net's epoch hooks around one train and one validation step (what run_training does)."""
    dl_train, dl_val = trainer.get_dataloaders()
    trainer.on_epoch_start()
    trainer.on_train_epoch_start()
    trainer.on_train_epoch_end([trainer.train_step(next(dl_train))])
    with torch.no_grad():
        trainer.on_validation_epoch_start()
        trainer.on_validation_epoch_end([trainer.validation_step(next(dl_val))])


def test_subset_names_in_the_log_follow_dataset_json(in_nnunet_env):
    # the MSD BrainTumour task's order: FLAIR first
    order = {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}
    trainer = _trainer(in_nnunet_env, dataset_edit=lambda d: d.update(channel_names=order))
    _one_epoch(trainer)
    log = Path(trainer.log_file).read_text()
    line = re.search(r"Pseudo dice, mean over 15 modality subsets: [\d.]+; (.*)", log).group(1)
    logged = [item.strip().rsplit(" ", 1)[0] for item in line.strip().split(", ")]
    assert logged == [subset_name(s, ("Fl", "T1", "T1c", "T2")) for s in all_subsets(4)]
    assert logged[:4] == ["T2", "T1c", "T1", "Fl"]


class _FullSetSelection(HolderMITrainer_smoke):
    checkpoint_selection = "full"


@pytest.mark.parametrize("cls, expect_new_best", [(HolderMITrainer_smoke, False), (_FullSetSelection, True)])
def test_checkpoint_best_follows_the_selection_criterion(in_nnunet_env, cls, expect_new_best):
    trainer = _trainer(in_nnunet_env, cls=cls)
    _one_epoch(trainer)
    trainer.on_epoch_end()
    best = Path(trainer.output_folder) / "checkpoint_best.pth"
    assert best.is_file()
    first = torch.load(best, map_location="cpu", weights_only=False)["_best_ema"]
    _one_epoch(trainer)
    # epoch 1: the full-set EMA improves, the mean over subsets gets worse
    logging = trainer.logger.local_logger.my_fantastic_logging
    logging["ema_fg_dice"][1] = logging["ema_fg_dice"][0] + 0.5
    logging["ema_subset_dice"][1] = logging["ema_subset_dice"][0] - 0.5
    trainer.on_epoch_end()
    saved = torch.load(best, map_location="cpu", weights_only=False)["_best_ema"]
    assert (saved != first) == expect_new_best
    assert len(logging["mean_subset_dice"]) == len(logging["mean_fg_dice"]) == 2


def test_deep_supervision_weights_are_nnunets_and_keep_a_single_output():
    from nnunet_holder.trainers.holder_mi import deep_supervision_weights

    assert deep_supervision_weights(3, keep_last=False) == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert deep_supervision_weights(2, keep_last=True)[1] == pytest.approx(1e-6 / (1 + 1e-6))
    # one output only (a 24^3 dataset planned with a single decoder stage): nnU-Net's formula gives NaN
    assert deep_supervision_weights(1, keep_last=False) == [1.0]
