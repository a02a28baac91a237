"""The schedule variants of the product trainers, generated from one table (`SCHEDULES`).

nnU-Net names a trainer's schedule by a suffix (its own `nnUNetTrainer_5epochs`), and
`nnUNetv2_train -tr NAME` finds a trainer as an attribute of a module in its search folders. Each
trainer of `SCHEDULED` gets one subclass per schedule, `<trainer>_<suffix>`, that sets only
`overrides`; the subclasses are created here as attributes of this module (and re-exported by the
package), so nnU-Net's lookup, pickling and checkpoints see them as hand-written classes. Names
nnU-Net already ships are not repeated: its lookup searches its own package first.
"""

from __future__ import annotations

from typing import Any

from nnunet_holder.trainers.baselines.modality_dropout import (
    nnUNetTrainerModalityDropout,
    nnUNetTrainerModalityDropout_fullHalf,
)
from nnunet_holder.trainers.holder_mi import HolderMITrainer
from nnunet_holder.trainers.overrides import DEMO, FIVE_EPOCHS, SMALL, SMOKE, OverridesMixin
from nnunet_holder.trainers.variants.distillation import (
    HolderMITrainer_featureFusion_distill,
    HolderMITrainer_inputFusion_distill,
    HolderMITrainer_inputFusion_distill_singlesHalf_sample3,
)
from nnunet_holder.trainers.variants.feature_fusion import HolderMITrainer_featureFusion
from nnunet_holder.trainers.variants.input_fusion import HolderMITrainer_inputFusion
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

SCHEDULES: dict[str, dict[str, Any]] = {
    "5epochs": FIVE_EPOCHS,
    "smoke": SMOKE,
    "small": SMALL,
    "demo": DEMO,
}
"""Suffix → the `overrides` of the trainers named with it (see nnunet_holder/trainers/overrides.py)."""

SCHEDULED: tuple[type, ...] = (
    HolderMITrainer,
    HolderMITrainer_featureFusion,
    HolderMITrainer_inputFusion,
    HolderMITrainer_featureFusion_distill,
    HolderMITrainer_inputFusion_distill,
    HolderMITrainer_inputFusion_distill_singlesHalf_sample3,
    nnUNetTrainerModalityDropout,
    nnUNetTrainerModalityDropout_fullHalf,
    nnUNetTrainer,
)
"""The trainers that get every schedule: the networks a user chooses between, and the baselines."""

NNUNET_OWN: frozenset[str] = frozenset({"nnUNetTrainer_5epochs"})
"""Schedule names nnU-Net ships itself (its training_length/nnUNetTrainer_Xepochs.py)."""


def _schedule_variant(trainer: type, suffix: str) -> type:
    """`<trainer>_<suffix>`: `trainer` with the schedule's overrides, an attribute of this module."""
    name = f"{trainer.__name__}_{suffix}"
    # nnU-Net's own trainers take the mixin in front, as the hand-written baselines did
    bases = (trainer,) if issubclass(trainer, OverridesMixin) else (OverridesMixin, trainer)
    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"`{trainer.__name__}` on the `_{suffix}` schedule (`SCHEDULES[{suffix!r}]`).",
        "overrides": SCHEDULES[suffix],
    }
    return type(name, bases, namespace)


SCHEDULE_VARIANTS: tuple[type, ...] = tuple(
    _schedule_variant(trainer, suffix)
    for trainer in SCHEDULED
    for suffix in SCHEDULES
    if f"{trainer.__name__}_{suffix}" not in NNUNET_OWN
)
"""Every generated schedule variant, trainer by trainer in the order of `SCHEDULED`."""

globals().update({variant.__name__: variant for variant in SCHEDULE_VARIANTS})
