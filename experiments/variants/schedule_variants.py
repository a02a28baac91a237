"""Longer and earlier schedules of the product trainers, with which records were trained.

`_small160`: the CPU experiment scale at twice the epochs (160 x 20), where modality dropout's
validation curve reaches its plateau (docs/records/synthetic_comparison.md,
docs/records/input_fusion_comparison.md). `_demo100`: the demo's earlier schedule (100 x 20), of the
first 3-seed record; `_demo400` and `_demo800`: twice and four times the demo's budget, whether
200 epochs is enough (docs/records/demo_record.md). `_demo13`: a fifteenth of the demo's budget,
one of 15 dedicated per-subset models at the compute of one unified model (docs/records/ceiling.md,
"Equal total compute"). A name ending in a number trains that many epochs.
"""

from typing import Any

from nnunet_holder.trainers import (
    HolderMITrainer_demo,
    HolderMITrainer_featureFusion_demo,
    HolderMITrainer_featureFusion_small,
    HolderMITrainer_inputFusion_demo,
    HolderMITrainer_inputFusion_distill_singlesHalf_sample3_demo,
    HolderMITrainer_inputFusion_small,
    HolderMITrainer_small,
    nnUNetTrainer_demo,
    nnUNetTrainer_small,
    nnUNetTrainerModalityDropout_demo,
    nnUNetTrainerModalityDropout_small,
)
from nnunet_holder.trainers.overrides import DEMO, SMALL

SMALL160: dict[str, Any] = {**SMALL, "num_epochs": 160}
DEMO13: dict[str, Any] = {**DEMO, "num_epochs": 13}
DEMO100: dict[str, Any] = {**DEMO, "num_epochs": 100}
DEMO400: dict[str, Any] = {**DEMO, "num_epochs": 400}
DEMO800: dict[str, Any] = {**DEMO, "num_epochs": 800}


class HolderMITrainer_small160(HolderMITrainer_small):
    overrides = SMALL160


class HolderMITrainer_featureFusion_small160(HolderMITrainer_featureFusion_small):
    overrides = SMALL160


class HolderMITrainer_inputFusion_small160(HolderMITrainer_inputFusion_small):
    overrides = SMALL160


class nnUNetTrainerModalityDropout_small160(nnUNetTrainerModalityDropout_small):
    overrides = SMALL160


class nnUNetTrainer_small160(nnUNetTrainer_small):
    overrides = SMALL160


class HolderMITrainer_demo100(HolderMITrainer_demo):
    overrides = DEMO100


class HolderMITrainer_inputFusion_demo100(HolderMITrainer_inputFusion_demo):
    overrides = DEMO100


class nnUNetTrainerModalityDropout_demo100(nnUNetTrainerModalityDropout_demo):
    overrides = DEMO100


class nnUNetTrainer_demo13(nnUNetTrainer_demo):
    overrides = DEMO13


class nnUNetTrainer_demo100(nnUNetTrainer_demo):
    overrides = DEMO100


class HolderMITrainer_demo400(HolderMITrainer_demo):
    overrides = DEMO400


class HolderMITrainer_featureFusion_demo400(HolderMITrainer_featureFusion_demo):
    overrides = DEMO400


class HolderMITrainer_inputFusion_demo400(HolderMITrainer_inputFusion_demo):
    overrides = DEMO400


class nnUNetTrainerModalityDropout_demo400(nnUNetTrainerModalityDropout_demo):
    overrides = DEMO400


class HolderMITrainer_inputFusion_distill_singlesHalf_sample3_demo400(
    HolderMITrainer_inputFusion_distill_singlesHalf_sample3_demo
):
    overrides = DEMO400


class nnUNetTrainer_demo400(nnUNetTrainer_demo):
    overrides = DEMO400


class HolderMITrainer_demo800(HolderMITrainer_demo):
    overrides = DEMO800


class HolderMITrainer_featureFusion_demo800(HolderMITrainer_featureFusion_demo):
    overrides = DEMO800


class nnUNetTrainerModalityDropout_demo800(nnUNetTrainerModalityDropout_demo):
    overrides = DEMO800


class nnUNetTrainer_demo800(nnUNetTrainer_demo):
    overrides = DEMO800
