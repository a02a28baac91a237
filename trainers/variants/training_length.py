"""Schedules: `_5epochs` (nnU-Net's meaning), `_smoke` (tests), `_small` (the CPU experiment
scale), `_demo` (the demo's)."""

from nnunet_holder.trainers.holder_mi import HolderMITrainer
from nnunet_holder.trainers.overrides import DEMO, FIVE_EPOCHS, SMALL, SMOKE


class HolderMITrainer_5epochs(HolderMITrainer):
    overrides = FIVE_EPOCHS


class HolderMITrainer_smoke(HolderMITrainer):
    overrides = SMOKE


class HolderMITrainer_small(HolderMITrainer):
    overrides = SMALL


class HolderMITrainer_demo(HolderMITrainer):
    overrides = DEMO
