"""HolderMITrainer_featureFusion: the paper's loss on the feature-fusion network, and its variants.

The network (`FeatureFusionNet`) runs the shared encoder once per available modality, fuses the
features over the available set at every skip level and the bottleneck, and decodes once; the
loss is the paper's (Dice + Hölder divergence on each subset's fused output at every
deep-supervision scale, variational MI between each subset's fused bottleneck and the full
set's). Each step trains `subsets_per_step` subsets, the full set always among them: 4 makes a
step cost what the paper's network costs (M encoder and 4 decoder passes per sample, against M
of each), where all 15 subsets would cost about 2.2 times as much. The default fusion operator
(the masked mean) was chosen on the validation cases (docs/records/synthetic_comparison.md); every
operator also has a variant named for it, so a comparison can say which one it ran.
"""

from typing import ClassVar

from nnunet_holder.architectures import FeatureFusionNet
from nnunet_holder.trainers.holder_mi import HolderMITrainer
from nnunet_holder.trainers.overrides import DEMO, FIVE_EPOCHS, SMALL, SMOKE


class HolderMITrainer_featureFusion(HolderMITrainer):
    """The feature-fusion network with the paper's loss (default operator: `fusion`)."""

    network_class = FeatureFusionNet
    fusion: ClassVar[str] = "mean"
    """A key of `architectures.fusion.FEATURE_FUSIONS`: "mean", "mean_variance" or "attention"."""
    subsets_per_step = 4

    @classmethod
    def network_options(cls) -> dict:
        return {"width": cls.width, "mi_stages": cls.mi_stages, "fusion": cls.fusion}


class HolderMITrainer_featureFusion_mean(HolderMITrainer_featureFusion):
    """Fuse by the plain mean of the available modalities' features (no fusion parameters; the default)."""

    fusion = "mean"


class HolderMITrainer_featureFusion_meanVariance(HolderMITrainer_featureFusion):
    """HeMIS fusion: mean and variance over the available modalities, projected by a 1x1 convolution."""

    fusion = "mean_variance"


class HolderMITrainer_featureFusion_attention(HolderMITrainer_featureFusion):
    """Learned per-voxel attention over the available modalities (a 1x1 score, softmax over them)."""

    fusion = "attention"


class HolderMITrainer_featureFusion_allSubsets(HolderMITrainer_featureFusion):
    """Every non-empty subset each step, as the paper trains (about 2.2 times the step cost)."""

    subsets_per_step = None


class HolderMITrainer_featureFusion_5epochs(HolderMITrainer_featureFusion):
    overrides = FIVE_EPOCHS


class HolderMITrainer_featureFusion_smoke(HolderMITrainer_featureFusion):
    overrides = SMOKE


class HolderMITrainer_featureFusion_small(HolderMITrainer_featureFusion):
    overrides = SMALL


class HolderMITrainer_featureFusion_demo(HolderMITrainer_featureFusion):
    overrides = DEMO


class HolderMITrainer_featureFusion_mean_small(HolderMITrainer_featureFusion_mean):
    overrides = SMALL


class HolderMITrainer_featureFusion_meanVariance_small(HolderMITrainer_featureFusion_meanVariance):
    overrides = SMALL


class HolderMITrainer_featureFusion_attention_small(HolderMITrainer_featureFusion_attention):
    overrides = SMALL


class HolderMITrainer_featureFusion_allSubsets_small(HolderMITrainer_featureFusion_allSubsets):
    overrides = SMALL
