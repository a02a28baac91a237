"""Loss variants that did not change the comparison they were tried in.

The volume form of the Hölder divergence; for the input-fusion network, the weighting of the
step's subsets (the full set's term twice, or the subset terms summed: the full set then gets
vanilla nnU-Net's gradient, the random subset modality dropout's, each plus the paper's terms),
nnU-Net's binary cross-entropy per region in place of the Hölder term (each subset then gets
exactly vanilla nnU-Net's Dice + CE), and the MI or Hölder term off, at the `_small160` schedule
of docs/records/input_fusion_comparison.md.
"""

from nnunet_holder.trainers import HolderMITrainer, HolderMITrainer_inputFusion
from schedule_variants import SMALL160


class HolderMITrainer_holderVolume(HolderMITrainer):
    divergence = "holder_volume"


class HolderMITrainer_inputFusion_fullSetWeight2(HolderMITrainer_inputFusion):
    full_set_weight = 2.0


class HolderMITrainer_inputFusion_sumSubsets(HolderMITrainer_inputFusion):
    subset_reduction = "sum"


class HolderMITrainer_inputFusion_BCE(HolderMITrainer_inputFusion):
    divergence = "bce"


class HolderMITrainer_inputFusion_noMI(HolderMITrainer_inputFusion):
    lambda_mi = 0.0


class HolderMITrainer_inputFusion_noHD(HolderMITrainer_inputFusion):
    divergence = None


class HolderMITrainer_inputFusion_fullSetWeight2_small160(HolderMITrainer_inputFusion_fullSetWeight2):
    overrides = SMALL160


class HolderMITrainer_inputFusion_sumSubsets_small160(HolderMITrainer_inputFusion_sumSubsets):
    overrides = SMALL160


class HolderMITrainer_inputFusion_BCE_small160(HolderMITrainer_inputFusion_BCE):
    overrides = SMALL160


class HolderMITrainer_inputFusion_noMI_small160(HolderMITrainer_inputFusion_noMI):
    overrides = SMALL160


class HolderMITrainer_inputFusion_noHD_small160(HolderMITrainer_inputFusion_noHD):
    overrides = SMALL160
