"""Schedules: `_5epochs` (nnU-Net's meaning), `_smoke` (tests and CPU checks), `_demo` (make demo)."""

from nnunet_holder.trainers.holder_mi import HolderMITrainer
from nnunet_holder.trainers.overrides import DEMO, FIVE_EPOCHS, SMOKE


class HolderMITrainer_5epochs(HolderMITrainer):
    overrides = FIVE_EPOCHS


class HolderMITrainer_smoke(HolderMITrainer):
    overrides = SMOKE


class HolderMITrainer_demo(HolderMITrainer):
    overrides = DEMO
