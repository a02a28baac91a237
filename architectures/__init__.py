"""Networks built from nnU-Net plans: the paper's logit-fusion network, the feature-fusion network,
the input-fusion network, their shared base and the modality-aware norm."""

from nnunet_holder.architectures.fusion_net import FeatureFusionNet
from nnunet_holder.architectures.input_fusion_net import InputFusionNet
from nnunet_holder.architectures.modality_net import ModalityNetwork
from nnunet_holder.architectures.modality_norm import ModalityNorm
from nnunet_holder.architectures.parallel_net import ModalityParallelNet

__all__ = ["FeatureFusionNet", "InputFusionNet", "ModalityNetwork", "ModalityNorm", "ModalityParallelNet"]
