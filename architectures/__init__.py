"""Networks built from nnU-Net plans: the modality-parallel backbone and its modality-aware norm."""

from nnunet_holder.architectures.modality_norm import ModalityNorm
from nnunet_holder.architectures.parallel_net import ModalityParallelNet, build_from_plans

__all__ = ["ModalityNorm", "ModalityParallelNet", "build_from_plans"]
