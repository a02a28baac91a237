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
gradient that vanilla nnU-Net gives it; the `_fullSetWeight2` and `_sumSubsets` variants change
only how the step's subsets are weighted (`HolderMILoss`), and `_BCE` puts nnU-Net's own
cross-entropy where the Hölder term is, so each subset gets exactly vanilla nnU-Net's Dice + CE.
`_availabilityChannels` changes the network's input only: the subset's mask as M more channels.
"""

from typing import ClassVar

from nnunet_holder.architectures import InputFusionNet
from nnunet_holder.trainers.holder_mi import HolderMITrainer
from nnunet_holder.trainers.overrides import DEMO, FIVE_EPOCHS, SMALL, SMOKE


class HolderMITrainer_inputFusion(HolderMITrainer):
    """The paper's loss on the plans' own U-Net with absent modalities zeroed (full width)."""

    network_class = InputFusionNet
    width = 1.0
    subsets_per_step = 2
    availability_channels: ClassVar[bool] = False
    """Feed the subset's 0/1 availability mask as M more input channels (`InputFusionNet`)."""

    @classmethod
    def network_options(cls) -> dict:
        return {
            "width": cls.width,
            "mi_stages": cls.mi_stages,
            "availability_channels": cls.availability_channels,
        }


class HolderMITrainer_inputFusion_availabilityChannels(HolderMITrainer_inputFusion):
    """The input also carries which modalities are present: M constant 0/1 channels."""

    availability_channels = True


class HolderMITrainer_inputFusion_fullSetWeight2(HolderMITrainer_inputFusion):
    """The full set's term counts twice in the mean over the step's subsets (2/3 of the loss)."""

    full_set_weight = 2.0


class HolderMITrainer_inputFusion_sumSubsets(HolderMITrainer_inputFusion):
    """The step's subset terms are summed: the full set gets vanilla nnU-Net's gradient, the random
    subset modality dropout's, each plus the paper's terms."""

    subset_reduction = "sum"


class HolderMITrainer_inputFusion_BCE(HolderMITrainer_inputFusion):
    """nnU-Net's binary cross-entropy per region in place of the Hölder divergence."""

    divergence = "bce"


class HolderMITrainer_inputFusion_5epochs(HolderMITrainer_inputFusion):
    overrides = FIVE_EPOCHS


class HolderMITrainer_inputFusion_smoke(HolderMITrainer_inputFusion):
    overrides = SMOKE


class HolderMITrainer_inputFusion_small(HolderMITrainer_inputFusion):
    overrides = SMALL


class HolderMITrainer_inputFusion_demo(HolderMITrainer_inputFusion):
    overrides = DEMO
