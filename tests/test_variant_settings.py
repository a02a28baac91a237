"""Every trainer variant's declared setting reaches the object that acts on it.

A variant is one class attribute or one `overrides` entry (trainers/variants). Nothing fails
loudly when `_build_loss`, `build_network_architecture` or the overrides mixin stops passing a
setting on: the variant silently trains the default. So these tests read the objects a real
nnU-Net `initialize()` built on the tiny dataset (the loss's divergence, the network's layers,
the optimizer, the LR schedule, the subset draw) and compare them with what the class declares.
The classes are enumerated from the shim module nnU-Net imports, so a new variant is covered
without editing this file; a new kind of setting fails `test_every_declared_setting_has_a_check`
until a check for it is added here.
"""

from __future__ import annotations

import inspect
from typing import Any

import nnunet_holder.trainers.ext.nnunet_holder_trainers as shim
import pytest
import torch
from nnunet_holder.architectures import FeatureFusionNet, InputFusionNet, ModalityNorm, ModalityParallelNet
from nnunet_holder.architectures.fusion import MaskedMean, MeanVariance, ModalityAttention
from nnunet_holder.trainers.holder_mi import HolderMITrainer
from nnunet_holder.trainers.overrides import ThinnedProgressPlot
from nnunetv2.run.run_training import get_trainer_from_args
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_holder.losses import (
    BCELoss,
    HellingerLoss,
    HolderDivergenceLoss,
    HolderMILoss,
    JensenShannonLoss,
    KLDivergenceLoss,
    MSELoss,
    NeymanChi2Loss,
    TotalVariationLoss,
)
from tests.conftest import DATASET_ID

TRAINERS = [v for v in vars(shim).values() if isinstance(v, type) and issubclass(v, nnUNetTrainer)]

# written out here rather than taken from build_divergence, so a wrong mapping there fails
DIVERGENCE_CLASSES: dict[str, type[torch.nn.Module]] = {
    "holder": HolderDivergenceLoss,
    "holder_volume": HolderDivergenceLoss,
    "kl": KLDivergenceLoss,
    "js": JensenShannonLoss,
    "tv": TotalVariationLoss,
    "hellinger": HellingerLoss,
    "neyman_chi2": NeymanChi2Loss,
    "mse": MSELoss,
    "bce": BCELoss,
}
HOLDER_FORMS = {"holder": "voxel", "holder_volume": "volume"}

# the feature-fusion operators by name, written out for the same reason
FUSION_CLASSES: dict[str, type[torch.nn.Module]] = {
    "mean": MaskedMean,
    "mean_variance": MeanVariance,
    "attention": ModalityAttention,
}

# variants that replace nnU-Net's configure_optimizers (code, not a declaration, so named here)
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {"HolderMITrainer_paper": torch.optim.Adam}

# the HolderMITrainer class attributes checked on built objects below
CHECKED_SETTINGS = {
    "width",
    "mi_stages",
    "divergence",
    "alpha",
    "lambda_hd",
    "lambda_mi",
    "detach_teacher",
    "subsets_per_step",
    "full_set_weight",
    "subset_reduction",
    "learned_fusion",
    "network_class",
    "fusion",
    "availability_channels",
    "subset_norms",
}
# settings no object built by initialize() holds; comparing the class attribute with itself
# would prove nothing, so they are listed, not tested
UNCHECKED_SETTINGS = {
    "checkpoint_selection": "read only in on_epoch_end, when it picks the EMA that checkpoint_best tracks",
    "validation_subsets_per_pass": "read only in validation_step; tests/test_validation_step.py checks the "
    "network passes it bounds",
    "lambda_kd": "passed to HolderMILoss by _build_loss; tests/test_distillation_trainer.py checks a distill "
    "trainer's step logs the KD part and its sibling's does not",
    "kd_temperature": "passed to HolderMILoss by _build_loss; tests/test_losses_distillation.py checks the "
    "temperature's effect on the loss",
    "single_modality_share": "read only in _step_subsets; tests/test_seeding.py checks a trainer's training "
    "draws follow it and its validation draws do not",
}
CHECKED_OVERRIDES = {
    "initial_lr",
    "weight_decay",
    "num_epochs",
    "num_iterations_per_epoch",
    "num_val_iterations_per_epoch",
    "enable_deep_supervision",
    "plot_every",
}


def declared_overrides(cls: type) -> dict[str, Any]:
    """The `overrides` of every class in the MRO, base first: what OverridesMixin promises to apply."""
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get("overrides", {}))
    return merged


def holder_settings(cls: type) -> set[str]:
    """The class-level settings a HolderMITrainer subclass can change (its annotated attributes)."""
    return {
        name
        for klass in cls.__mro__
        if issubclass(klass, HolderMITrainer)
        for name in inspect.get_annotations(klass)
    }


def _initialized(name: str) -> nnUNetTrainer:
    trainer = get_trainer_from_args(str(DATASET_ID), "3d_fullres", 0, name, device=torch.device("cpu"))
    trainer.initialize()
    return trainer


def _check_schedule_and_optimizer(trainer: nnUNetTrainer, cls: type) -> None:
    declared = declared_overrides(cls)

    # an undeclared setting keeps the value nnU-Net's constructor gave the instance
    def expected(key: str) -> Any:
        return declared.get(key, getattr(trainer, key))

    optimizer, scheduler = trainer.optimizer, trainer.lr_scheduler
    assert type(optimizer) is OPTIMIZERS.get(cls.__name__, torch.optim.SGD)
    for group in optimizer.param_groups:
        # PolyLRScheduler's first step sets lr to its initial_lr (1 - 0/max_steps = 1)
        assert group["lr"] == expected("initial_lr")
        assert group["weight_decay"] == expected("weight_decay")
    assert scheduler.initial_lr == expected("initial_lr")
    assert scheduler.max_steps == expected("num_epochs")  # the poly decay reaches 0 at the last epoch
    # nnU-Net's run_training loops `range(self.num_(val_)iterations_per_epoch)`: the instance
    # attribute is the only holder of these two, the one the loop reads
    assert trainer.num_epochs == expected("num_epochs")
    assert trainer.num_iterations_per_epoch == expected("num_iterations_per_epoch")
    assert trainer.num_val_iterations_per_epoch == expected("num_val_iterations_per_epoch")
    assert trainer.network.decoder.deep_supervision is expected("enable_deep_supervision")
    # the only reader of plot_every is the logger wrapper, installed where the schedule thins the plot
    every = declared.get("plot_every", 1)
    assert trainer.plot_every == every
    assert isinstance(trainer.logger, ThinnedProgressPlot) is (every > 1)


def _check_loss(trainer: HolderMITrainer, cls: type[HolderMITrainer]) -> None:
    loss = trainer.loss
    assert isinstance(loss, HolderMILoss)
    assert loss.lambda_hd == cls.lambda_hd
    assert loss.lambda_mi == cls.lambda_mi
    assert loss.mi.detach_teacher is cls.detach_teacher
    assert loss.full_set_weight == cls.full_set_weight
    assert loss.subset_reduction == cls.subset_reduction
    # one weight per deep-supervision output, or a single scale without deep supervision
    assert (len(loss.ds_weights) > 1) is trainer.enable_deep_supervision
    if cls.divergence is None:
        assert loss.divergence is None
        return
    assert cls.divergence in DIVERGENCE_CLASSES, f"add the class of divergence {cls.divergence!r} here"
    divergence = loss.divergence
    assert type(divergence) is DIVERGENCE_CLASSES[cls.divergence]
    assert divergence.use_sigmoid is trainer.label_manager.has_regions  # the tiny dataset has regions
    if cls.divergence in HOLDER_FORMS:
        assert divergence.form == HOLDER_FORMS[cls.divergence]
        assert divergence.alpha == cls.alpha
        assert divergence.beta == pytest.approx(cls.alpha / (cls.alpha - 1))
    else:
        # the other divergences have no exponent: a changed alpha there would train the default
        assert cls.alpha == HolderMITrainer.alpha, f"{cls.__name__}: {cls.divergence} ignores alpha"


def _check_network(trainer: HolderMITrainer, cls: type[HolderMITrainer]) -> None:
    net = trainer.network  # on the CPU nnU-Net wraps it neither in DDP nor in torch.compile
    assert type(net) is cls.network_class
    if isinstance(net, FeatureFusionNet):
        encoder = net.encoder
        assert [type(op) for op in net.fusions] == [FUSION_CLASSES[cls.fusion]] * len(encoder.stages)
    else:
        assert isinstance(net, (ModalityParallelNet, InputFusionNet))
        encoder = net.backbone.encoder
    # the first convolution sees one modality (the modality-parallel networks) or all of them
    first = next(m for m in encoder.modules() if isinstance(m, encoder.conv_op))
    if isinstance(net, InputFusionNet):  # and the availability mask's M channels where asked for
        assert first.in_channels == trainer.num_input_channels * (2 if cls.availability_channels else 1)
        # one affine per modality subset in every norm where asked for, else the plans' own norms
        groups = {m.weight.shape[0] for m in net.backbone.modules() if isinstance(m, ModalityNorm)}
        assert groups == ({2**trainer.num_input_channels - 1} if cls.subset_norms else set())
    else:
        assert first.in_channels == 1
    plans_features = trainer.configuration_manager.network_arch_init_kwargs["features_per_stage"]
    # the output features of every convolution of each encoder stage (all equal in a stage)
    built = [{m.out_channels for m in s.modules() if isinstance(m, encoder.conv_op)} for s in encoder.stages]
    assert built == [{max(1, round(f * cls.width))} for f in plans_features]
    assert len(net.mi_regressors) == cls.mi_stages
    params = dict(net.named_parameters())
    assert ("fusion_logits" in params) is cls.learned_fusion
    if cls.learned_fusion:
        optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
        assert id(params["fusion_logits"]) in optimised


def _check_subsets(trainer: HolderMITrainer, cls: type[HolderMITrainer]) -> None:
    m = trainer.num_input_channels
    num_subsets = 2**m - 1
    mask = trainer._subsets_for_step()
    rows = {tuple(int(v) for v in row) for row in mask}
    expected = num_subsets if cls.subsets_per_step is None else min(cls.subsets_per_step, num_subsets)
    assert mask.shape == (expected, m)
    assert len(rows) == expected  # no subset drawn twice
    # the full set is always trained (the MI teacher), last: where the loss's full_set_weight looks
    assert tuple(int(v) for v in mask[-1]) == (1,) * m
    assert all(any(row) for row in rows)


@pytest.mark.parametrize("cls", TRAINERS, ids=lambda c: c.__name__)
def test_variant_settings_reach_the_built_objects(in_nnunet_env, cls: type[nnUNetTrainer]) -> None:
    trainer = _initialized(cls.__name__)
    assert type(trainer) is cls  # nnU-Net's lookup by name found this very class
    _check_schedule_and_optimizer(trainer, cls)
    if issubclass(cls, HolderMITrainer):
        _check_loss(trainer, cls)
        _check_network(trainer, cls)
        _check_subsets(trainer, cls)


def test_every_declared_setting_has_a_check() -> None:
    assert len(TRAINERS) > 1 and HolderMITrainer in TRAINERS
    for cls in TRAINERS:
        unknown = set(declared_overrides(cls)) - CHECKED_OVERRIDES
        assert not unknown, f"{cls.__name__} overrides {unknown}: add a check of where they land"
        if issubclass(cls, HolderMITrainer):
            unknown = holder_settings(cls) - CHECKED_SETTINGS - set(UNCHECKED_SETTINGS)
            assert not unknown, f"{cls.__name__} has settings {unknown}: add a check of where they land"
