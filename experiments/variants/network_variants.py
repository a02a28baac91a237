"""Network variants: the backbone's width, learned logit fusion, no deep supervision, the
feature-fusion operators, the input-fusion network told which modalities are present, and the
input-fusion network with one norm affine per modality subset.

The feature-fusion operators are keys of `architectures.fusion.FEATURE_FUSIONS`; the product's
default, the plain mean, was chosen among them on the validation cases
(docs/records/synthetic_comparison.md). The availability channels were tried on the demo's
earlier schedule (docs/records/demo_record.md). The subset norms were tried on the 3-subset
product trainer, against the dedicated per-subset models (docs/records/ceiling.md).
"""

from nnunet_holder.trainers import (
    HolderMITrainer,
    HolderMITrainer_featureFusion,
    HolderMITrainer_inputFusion,
    HolderMITrainer_inputFusion_distill_singlesHalf_sample3_demo,
)
from nnunet_holder.trainers.overrides import SMALL
from schedule_variants import DEMO100


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
