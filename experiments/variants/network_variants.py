"""Network variants: the backbone's width, learned logit fusion, no deep supervision, the
feature-fusion operators, the input-fusion network told which modalities are present, the
input-fusion network with one norm affine per modality subset, and the plans' backbone at twice its
features per stage.

The feature-fusion operators are keys of `architectures.fusion.FEATURE_FUSIONS`; the product's
default, the plain mean, was chosen among them on the validation cases
(docs/records/synthetic_comparison.md). The availability channels were tried on the demo's
earlier schedule (docs/records/demo_record.md). The subset norms were tried on the 3-subset
product trainer, against the dedicated per-subset models (docs/records/ceiling.md). The wider
backbone asks whether the unified models' gap to the dedicated ones in the whole tumour is the small
demo network's capacity (docs/records/ceiling.md, "Capacity").
"""

from copy import deepcopy
from typing import ClassVar

from nnunet_holder.trainers import (
    HolderMITrainer,
    HolderMITrainer_featureFusion,
    HolderMITrainer_inputFusion,
    HolderMITrainer_inputFusion_distill_singlesHalf_sample3_demo,
    nnUNetTrainer_demo,
    nnUNetTrainerModalityDropout_fullHalf_demo,
)
from nnunet_holder.trainers.overrides import SMALL
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from schedule_variants import DEMO100
from torch import nn


class HolderMITrainer_width1(HolderMITrainer):
    """The backbone at nnU-Net's full feature count (the default is the paper's 0.5)."""

    width = 1.0


class HolderMITrainer_learnedFusion(HolderMITrainer):
    """Fuse the available modalities' logits with learned per-(modality, class) weights."""

    learned_fusion = True


class HolderMITrainer_noDeepSupervision(HolderMITrainer):
    """Loss on the full-resolution output only (nnU-Net's `nnUNetTrainerNoDeepSupervision`)."""

    overrides = {"enable_deep_supervision": False}


class HolderMITrainer_featureFusion_mean(HolderMITrainer_featureFusion):
    """The plain mean of the available modalities' features (no fusion parameters; the default)."""

    fusion = "mean"


class HolderMITrainer_featureFusion_meanVariance(HolderMITrainer_featureFusion):
    """HeMIS fusion: mean and variance over the available modalities, projected by a 1x1 convolution."""

    fusion = "mean_variance"


class HolderMITrainer_featureFusion_attention(HolderMITrainer_featureFusion):
    """Learned per-voxel attention over the available modalities (a 1x1 score, softmax over them)."""

    fusion = "attention"


class HolderMITrainer_featureFusion_mean_small(HolderMITrainer_featureFusion_mean):
    overrides = SMALL


class HolderMITrainer_featureFusion_meanVariance_small(HolderMITrainer_featureFusion_meanVariance):
    overrides = SMALL


class HolderMITrainer_featureFusion_attention_small(HolderMITrainer_featureFusion_attention):
    overrides = SMALL


class HolderMITrainer_inputFusion_availabilityChannels(HolderMITrainer_inputFusion):
    """The input also carries which modalities are present: M constant 0/1 channels."""

    availability_channels = True


class HolderMITrainer_inputFusion_availabilityChannels_demo100(
    HolderMITrainer_inputFusion_availabilityChannels,
):
    overrides = DEMO100


class HolderMITrainer_inputFusion_distill_singlesHalf_sample3_subsetNorms_demo(
    HolderMITrainer_inputFusion_distill_singlesHalf_sample3_demo,
):
    """The 3-subset trainer with one affine per modality subset in every norm of the backbone."""

    subset_norms = True


class WiderBackbone:
    """Mixin: the plans' features per stage times `feature_scale`, in training and in prediction.

    nnU-Net builds the network through the trainer class's `build_network_architecture` in both, so
    the model folder keeps the dataset's plans and the checkpoint still loads.
    """

    feature_scale: ClassVar[int] = 2

    @classmethod
    def build_network_architecture(
        cls,
        plans_manager: PlansManager,
        configuration_manager: ConfigurationManager,
        num_input_channels: int,
        num_output_channels: int,
        enable_deep_supervision: bool = True,
    ) -> nn.Module:
        configuration = deepcopy(configuration_manager.configuration)
        arch = configuration["architecture"]["arch_kwargs"]
        arch["features_per_stage"] = [cls.feature_scale * f for f in arch["features_per_stage"]]
        return super().build_network_architecture(
            plans_manager,
            ConfigurationManager(configuration),
            num_input_channels,
            num_output_channels,
            enable_deep_supervision,
        )


class nnUNetTrainer_demo_doubleWidth(WiderBackbone, nnUNetTrainer_demo):
    """Vanilla nnU-Net on the demo's schedule with twice the features per stage."""


class nnUNetTrainerModalityDropout_fullHalf_demo_doubleWidth(
    WiderBackbone, nnUNetTrainerModalityDropout_fullHalf_demo
):
    """The recommended dropout on the demo's schedule with twice the features per stage."""
