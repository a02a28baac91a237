# The CPU experiment scale at twice the iterations (160 x 20): the budget at which modality
# dropout's validation curve reaches its plateau (docs/records/synthetic_comparison.md).
from nnunet_holder.trainers import (
    HolderMITrainer_featureFusion_small,
    HolderMITrainer_inputFusion_small,
    HolderMITrainer_small,
    nnUNetTrainer_small,
    nnUNetTrainerModalityDropout_small,
)


class HolderMITrainer_inputFusion_small160(HolderMITrainer_inputFusion_small):
    overrides = {"num_epochs": 160}


class nnUNetTrainerModalityDropout_small160(nnUNetTrainerModalityDropout_small):
    overrides = {"num_epochs": 160}


class nnUNetTrainer_small160(nnUNetTrainer_small):
    overrides = {"num_epochs": 160}


class HolderMITrainer_small160(HolderMITrainer_small):
    overrides = {"num_epochs": 160}


class HolderMITrainer_featureFusion_small160(HolderMITrainer_featureFusion_small):
    overrides = {"num_epochs": 160}


class HolderMITrainer_inputFusion_fullSetWeight2_small160(HolderMITrainer_inputFusion_small160):
    full_set_weight = 2.0


class HolderMITrainer_inputFusion_sumSubsets_small160(HolderMITrainer_inputFusion_small160):
    subset_reduction = "sum"


class HolderMITrainer_inputFusion_noMI_small160(HolderMITrainer_inputFusion_small160):
    lambda_mi = 0.0


class HolderMITrainer_inputFusion_BCE_small160(HolderMITrainer_inputFusion_small160):
    divergence = "bce"


class HolderMITrainer_inputFusion_noHD_small160(HolderMITrainer_inputFusion_small160):
    divergence = None
