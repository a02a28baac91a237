"""Network variants: the backbone's width and the fusion of the per-modality outputs."""

from nnunet_holder.trainers.holder_mi import HolderMITrainer


class HolderMITrainer_width1(HolderMITrainer):
    """The backbone at nnU-Net's full feature count (the default is the paper's 0.5)."""

    width = 1.0


class HolderMITrainer_learnedFusion(HolderMITrainer):
    """Fuse the available modalities' logits with learned per-(modality, class) weights."""

    learned_fusion = True


class HolderMITrainer_noDeepSupervision(HolderMITrainer):
    """Loss on the full-resolution output only (nnU-Net's `nnUNetTrainerNoDeepSupervision`)."""

    overrides = {"enable_deep_supervision": False}
