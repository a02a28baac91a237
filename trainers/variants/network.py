"""Network width: the backbone at nnU-Net's full feature count (the default is the paper's 0.5)."""

from nnunet_holder.trainers.holder_mi import HolderMITrainer


class HolderMITrainer_width1(HolderMITrainer):
    width = 1.0
