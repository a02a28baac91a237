"""Subset schedule: k random modality subsets per step (the full set always among them) instead of all."""

from nnunet_holder.trainers.holder_mi import HolderMITrainer


class HolderMITrainer_sample4(HolderMITrainer):
    subsets_per_step = 4
