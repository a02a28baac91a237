# Variants around the demo's schedule (`_demo`: 200 x 20 on 3d_small of the 8 mm data), for the
# records in docs/records/demo_record.md.
from nnunet_holder.trainers import (
    HolderMITrainer_demo,
    HolderMITrainer_featureFusion_demo,
    HolderMITrainer_inputFusion_availabilityChannels,
    HolderMITrainer_inputFusion_demo,
    nnUNetTrainer_demo,
    nnUNetTrainerModalityDropout_demo,
)
from nnunet_holder.trainers.overrides import DEMO


# The demo's earlier schedule, 100 x 20: the first 3-seed record and the availability-channels runs.
class HolderMITrainer_demo100(HolderMITrainer_demo):
    overrides = {"num_epochs": 100}


class HolderMITrainer_inputFusion_demo100(HolderMITrainer_inputFusion_demo):
    overrides = {"num_epochs": 100}


class HolderMITrainer_inputFusion_availabilityChannels_demo100(
    HolderMITrainer_inputFusion_availabilityChannels,
):
    overrides = {**DEMO, "num_epochs": 100}


class nnUNetTrainer_demo100(nnUNetTrainer_demo):
    overrides = {"num_epochs": 100}


class nnUNetTrainerModalityDropout_demo100(nnUNetTrainerModalityDropout_demo):
    overrides = {"num_epochs": 100}


# Whether 200 epochs is enough: the models that gained from 100 to 200, at twice the budget again.
class HolderMITrainer_demo400(HolderMITrainer_demo):
    overrides = {"num_epochs": 400}


class HolderMITrainer_inputFusion_demo400(HolderMITrainer_inputFusion_demo):
    overrides = {"num_epochs": 400}


class nnUNetTrainerModalityDropout_demo400(nnUNetTrainerModalityDropout_demo):
    overrides = {"num_epochs": 400}


class nnUNetTrainer_demo400(nnUNetTrainer_demo):
    overrides = {"num_epochs": 400}


class HolderMITrainer_featureFusion_demo400(HolderMITrainer_featureFusion_demo):
    overrides = {"num_epochs": 400}


# Whether 400 epochs is enough (validation cases): dropout (3 seeds), vanilla nnU-Net, feature
# fusion and the paper's network (seed 0) at twice the budget again.
class nnUNetTrainerModalityDropout_demo800(nnUNetTrainerModalityDropout_demo):
    overrides = {"num_epochs": 800}


class nnUNetTrainer_demo800(nnUNetTrainer_demo):
    overrides = {"num_epochs": 800}


class HolderMITrainer_featureFusion_demo800(HolderMITrainer_featureFusion_demo):
    overrides = {"num_epochs": 800}


class HolderMITrainer_demo800(HolderMITrainer_demo):
    overrides = {"num_epochs": 800}


# Whether a faster schedule gets the demo's 200 epochs to the 800-epoch level (validation cases):
# nnU-Net's initial learning rate (0.01) doubled, tried on modality dropout only (it did not help).
# The runs were trained as `..._demoLr2`; renamed because a name ending in a number means epochs here.
class nnUNetTrainerModalityDropout_lr0p02_demo(nnUNetTrainerModalityDropout_demo):
    overrides = {"initial_lr": 0.02}
