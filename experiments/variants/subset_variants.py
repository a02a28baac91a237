"""Subset schedules: how many modality subsets a step trains (the full set always among them).

HolderMITrainer trains every non-empty subset each step, as the paper does, and the feature-fusion
network 4; these variants tried 4 for the paper's network and all for the feature-fusion network
(about 2.2 times its step cost; docs/records/synthetic_comparison.md). `_singlesHalf` draws the
step's other subset from the single modalities half of the time (uniform drawing: 4 of 14), where
a unified model is furthest from the dedicated per-subset models; `_singles3q` three quarters of the
time (docs/records/ceiling.md). Training 3 subsets a step with the singles half of the draws became
the product trainer `HolderMITrainer_inputFusion_distill_singlesHalf_sample3`.
"""

from nnunet_holder.trainers import (
    HolderMITrainer,
    HolderMITrainer_featureFusion,
    HolderMITrainer_inputFusion_distill_demo,
)
from nnunet_holder.trainers.overrides import SMALL


class HolderMITrainer_sample4(HolderMITrainer):
    subsets_per_step = 4


class HolderMITrainer_featureFusion_allSubsets(HolderMITrainer_featureFusion):
    subsets_per_step = None


class HolderMITrainer_featureFusion_allSubsets_small(HolderMITrainer_featureFusion_allSubsets):
    overrides = SMALL


class HolderMITrainer_inputFusion_distill_singlesHalf_demo(HolderMITrainer_inputFusion_distill_demo):
    single_modality_share = 0.5


class HolderMITrainer_inputFusion_distill_singles3q_demo(HolderMITrainer_inputFusion_distill_demo):
    single_modality_share = 0.75
