"""Vanilla nnU-Net on our short schedules; at test time missing channels are zero-filled.

`nnUNetTrainer` and `nnUNetTrainer_5epochs` are nnU-Net's own; these add the schedules nnU-Net
does not have, so the baseline trains exactly as long as HolderMITrainer's variants.
"""

from nnunet_holder.trainers.overrides import DEMO, SMALL, SMOKE, OverridesMixin
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainer_smoke(OverridesMixin, nnUNetTrainer):
    overrides = SMOKE


class nnUNetTrainer_small(OverridesMixin, nnUNetTrainer):
    overrides = SMALL


class nnUNetTrainer_demo(OverridesMixin, nnUNetTrainer):
    overrides = DEMO
