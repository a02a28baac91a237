"""The experiment variants in experiments/variants, with which the records were trained, still run.

Every module imports the way nnU-Net imports it (a top-level module, the folder on `sys.path`),
and every variant resolves through nnU-Net's own trainer lookup under the records'
`nnUNet_extTrainer` (the package's folder, then experiments/variants). A variant whose name ends in
a schedule and a number (`_demo400`, `_small160`) trains that schedule for that many epochs, so a
record's trainer name cannot silently mean another schedule; no variant takes a product trainer's
name. Every variant that changes more than its schedule runs a training and a validation step (a
schedule-only variant's steps are its parent's).
"""

from __future__ import annotations

import contextlib
import io
import os
import re

import numpy as np
import pytest
import torch
from nnunet_holder.trainers import ALL_TRAINERS
from nnunet_holder.trainers.overrides import OverridesMixin
from nnunet_holder.trainers.schedules import SCHEDULES
from nnunetv2.run.run_training import get_trainer_from_args
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.find_class_by_name import (
    temporarily_cleanup_imports_from_path,
    temporarily_extend_syspath,
)
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

from tests.conftest import DATASET_ID
from tests.helpers_nnunet import EXPERIMENT_VARIANTS, with_experiment_variants

MODULES = sorted(EXPERIMENT_VARIANTS.glob("*.py"))


def _defined(path) -> dict[str, type]:
    """The trainer classes module `path` defines itself, imported as nnU-Net imports it."""
    import importlib

    folder = str(EXPERIMENT_VARIANTS)
    with temporarily_extend_syspath(folder), temporarily_cleanup_imports_from_path(folder):
        module = importlib.import_module(path.stem)
        return {
            name: value
            for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, nnUNetTrainer) and value.__module__ == path.stem
        }


VARIANTS = {name: path for path in MODULES for name in _defined(path)}


def test_every_module_defines_variants():
    assert MODULES, EXPERIMENT_VARIANTS
    for path in MODULES:
        assert _defined(path), f"{path.name} defines no trainer"


def test_no_variant_takes_a_product_trainer_name():
    assert not set(VARIANTS) & {t.__name__ for t in ALL_TRAINERS}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_nnunet_finds_the_variant_under_the_records_ext_trainer(env, monkeypatch, name):
    monkeypatch.setenv("nnUNet_extTrainer", with_experiment_variants(env)["nnUNet_extTrainer"])
    with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net prints every module it inspects
        found = recursive_find_trainer_class_by_name(name)
    assert found.__name__ == name and found.__module__ == VARIANTS[name].stem
    assert issubclass(found, OverridesMixin)
    longer = re.search(rf"_({'|'.join(SCHEDULES)})(\d+)$", name)
    if longer:  # the named schedule's iterations, for the number of epochs in the name
        schedule, merged = SCHEDULES[longer.group(1)], found.merged_overrides()
        assert {k: merged[k] for k in schedule} == {**schedule, "num_epochs": int(longer.group(2))}, name


def _changes_more_than_its_schedule(name: str) -> bool:
    """Whether the class body of `name` sets anything but schedule keys in `overrides`."""
    cls = _defined(VARIANTS[name])[name]
    own = {k for k in vars(cls) if not k.startswith("__")}
    schedule_keys = {k for schedule in SCHEDULES.values() for k in schedule}
    return own != {"overrides"} or not set(cls.overrides) <= schedule_keys


STEPPED = sorted(n for n in VARIANTS if _changes_more_than_its_schedule(n))


def test_the_stepped_variants_are_the_behaviour_probes():
    assert {
        "HolderMITrainer_learnedFusion",
        "nnUNetTrainerModalityDropout_keep75_demo",
        "nnUNetTrainerModalityDropout_lr0p02_demo",
        "HolderMITrainer_noDeepSupervision",
    } <= set(STEPPED)
    assert "HolderMITrainer_demo800" not in STEPPED


@pytest.mark.parametrize("name", STEPPED)
def test_every_variant_runs_a_train_and_a_validation_step(in_nnunet_env, monkeypatch, name):
    monkeypatch.setenv("nnUNet_extTrainer", with_experiment_variants(os.environ)["nnUNet_extTrainer"])
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = get_trainer_from_args(str(DATASET_ID), "3d_fullres", 0, name, device=torch.device("cpu"))
    trainer.initialize()
    dl_train, dl_val = trainer.get_dataloaders()
    trainer.network.train()
    assert np.isfinite(trainer.train_step(next(dl_train))["loss"])
    trainer.on_validation_epoch_start()
    with torch.no_grad():
        val = trainer.validation_step(next(dl_val))
    assert np.isfinite(val["loss"]) and val["tp_hard"].shape == (3,)


@pytest.mark.parametrize(
    "name", ["nnUNetTrainer_demo_doubleWidth", "nnUNetTrainerModalityDropout_fullHalf_demo_doubleWidth"]
)
def test_the_wider_backbone_is_built_alike_for_training_and_prediction(in_nnunet_env, monkeypatch, name):
    monkeypatch.setenv("nnUNet_extTrainer", with_experiment_variants(os.environ)["nnUNet_extTrainer"])
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = get_trainer_from_args(str(DATASET_ID), "3d_fullres", 0, name, device=torch.device("cpu"))
    trainer.initialize()
    planned = trainer.configuration_manager.network_arch_init_kwargs["features_per_stage"]
    convs = [m for m in trainer.network.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs[0].out_channels == 2 * planned[0] and max(c.out_channels for c in convs) == 2 * planned[-1]
    # nnU-Net's predictor builds the network from the model folder's plans (the dataset's, unchanged)
    # through the same class method, without deep supervision: the trained weights must load into it
    predicting = type(trainer).build_network_architecture(
        trainer.plans_manager,
        trainer.plans_manager.get_configuration("3d_fullres"),
        trainer.num_input_channels,
        trainer.label_manager.num_segmentation_heads,
        enable_deep_supervision=False,
    )
    predicting.load_state_dict(trainer.network.state_dict())
