"""HolderMITrainer_inputFusion: the paper's loss on nnU-Net's own network, modalities fused at the input.

The network (`InputFusionNet`) is the plans' U-Net at nnU-Net's width on all channels, the one
the modality-dropout baseline trains; a subset is the input with the other channels zeroed. The
loss is the paper's (Dice + Hölder divergence on each subset's output at every deep-supervision
scale, variational MI between each subset's bottleneck and the full set's). Each step trains
`subsets_per_step` subsets with the full set always among them: 2 (the full set and one random
subset, as modality dropout trains one random subset) makes a step cost two forward-backward
passes of the baseline's network. So the difference from modality dropout is what the paper's
method adds: the full set in every step, the Hölder term and the MI alignment of every subset's
features with the full set's. Averaging the two subsets' losses gives the full set half the
gradient that vanilla nnU-Net gives it; `full_set_weight` and `subset_reduction` change how the
step's subsets are weighted (`HolderMILoss`), `availability_channels` feeds the subset's mask
as M more input channels, and `subset_norms` gives each subset its own affine in every norm. The
variants that tried them (and nnU-Net's cross-entropy in place of the Hölder term) are in
experiments/variants/ (docs/records/input_fusion_comparison.md, docs/records/ceiling.md).
"""

from typing import ClassVar

from nnunet_holder.architectures import InputFusionNet
from nnunet_holder.trainers.holder_mi import HolderMITrainer


class HolderMITrainer_inputFusion(HolderMITrainer):
    """The paper's loss on the plans' own U-Net with absent modalities zeroed (full width)."""

    network_class = InputFusionNet
    width = 1.0
    subsets_per_step = 2
    availability_channels: ClassVar[bool] = False
    """Feed the subset's 0/1 availability mask as M more input channels (`InputFusionNet`)."""
    subset_norms: ClassVar[bool] = False
    """One affine per modality subset in every normalization of the backbone (`InputFusionNet`)."""

    @classmethod
    def network_options(cls) -> dict:
        return {
            "width": cls.width,
            "mi_stages": cls.mi_stages,
            "availability_channels": cls.availability_channels,
            "subset_norms": cls.subset_norms,
        }
