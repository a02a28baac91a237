"""HolderMITrainer_featureFusion: the paper's loss on the feature-fusion network.

The network (`FeatureFusionNet`) runs the shared encoder once per available modality, fuses the
features over the available set at every skip level and the bottleneck, and decodes once; the
loss is the paper's (Dice + Hölder divergence on each subset's fused output at every
deep-supervision scale, variational MI between each subset's fused bottleneck and the full
set's). Each step trains `subsets_per_step` subsets, the full set always among them: 4 makes a
step cost what the paper's network costs (M encoder and 4 decoder passes per sample, against M
of each), where all 15 subsets would cost about 2.2 times as much. The default fusion operator
(the masked mean) was chosen on the validation cases (docs/records/synthetic_comparison.md); the
variants that ran each operator are in experiments/variants/network_variants.py.
"""

from typing import ClassVar

from nnunet_holder.architectures import FeatureFusionNet
from nnunet_holder.trainers.holder_mi import HolderMITrainer


class HolderMITrainer_featureFusion(HolderMITrainer):
    """The feature-fusion network with the paper's loss (default operator: `fusion`)."""

    network_class = FeatureFusionNet
    fusion: ClassVar[str] = "mean"
    """A key of `architectures.fusion.FEATURE_FUSIONS`: "mean", "mean_variance" or "attention"."""
    subsets_per_step = 4

    @classmethod
    def network_options(cls) -> dict:
        return {"width": cls.width, "mi_stages": cls.mi_stages, "fusion": cls.fusion}
