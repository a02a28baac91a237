"""nnU-Net trainer classes of nnunet-holder: the trainers a user chooses between.

`ALL_TRAINERS` lists every class a user can name with `-tr`; the shim module in `ext/` (the
folder `nnunet-holder trainer-path` prints) re-exports exactly these. They are HolderMITrainer and
the variants the paper's tables train (experiments/table*.sh), the fusion networks, the modality
dropout baselines, and each of those networks and vanilla nnU-Net on the schedules `_5epochs`,
`_smoke`, `_small` and `_demo` (generated in `schedules.py`). Variants kept only to reproduce a
record live beside the records, in experiments/variants/ (an extra `nnUNet_extTrainer` folder).
"""

from nnunet_holder.trainers.baselines.modality_dropout import (
    nnUNetTrainerModalityDropout,
    nnUNetTrainerModalityDropout_fullHalf,
)
from nnunet_holder.trainers.holder_mi import HolderMITrainer
from nnunet_holder.trainers.schedules import SCHEDULE_VARIANTS
from nnunet_holder.trainers.variants.distillation import (
    HolderMITrainer_featureFusion_distill,
    HolderMITrainer_inputFusion_distill,
    HolderMITrainer_inputFusion_distill_singlesHalf_sample3,
)
from nnunet_holder.trainers.variants.feature_fusion import HolderMITrainer_featureFusion
from nnunet_holder.trainers.variants.input_fusion import HolderMITrainer_inputFusion
from nnunet_holder.trainers.variants.loss import (
    HolderMITrainer_alpha1p05,
    HolderMITrainer_alpha1p08,
    HolderMITrainer_alpha1p10,
    HolderMITrainer_alpha1p15,
    HolderMITrainer_alpha1p20,
    HolderMITrainer_BCE,
    HolderMITrainer_Hellinger,
    HolderMITrainer_JS,
    HolderMITrainer_KL,
    HolderMITrainer_MSE,
    HolderMITrainer_NeymanChi2,
    HolderMITrainer_noHD,
    HolderMITrainer_noMI,
    HolderMITrainer_noMI_noHD,
    HolderMITrainer_TV,
)
from nnunet_holder.trainers.variants.optimizer import HolderMITrainer_paper

NETWORKS = (
    HolderMITrainer,
    HolderMITrainer_featureFusion,
    HolderMITrainer_inputFusion,
    HolderMITrainer_featureFusion_distill,
    HolderMITrainer_inputFusion_distill,
    HolderMITrainer_inputFusion_distill_singlesHalf_sample3,
    nnUNetTrainerModalityDropout,
    nnUNetTrainerModalityDropout_fullHalf,
)
"""The paper's network, the fusion networks and the modality dropout baselines."""

PAPER_TABLES = (
    HolderMITrainer_paper,
    HolderMITrainer_TV,
    HolderMITrainer_Hellinger,
    HolderMITrainer_KL,
    HolderMITrainer_NeymanChi2,
    HolderMITrainer_JS,
    HolderMITrainer_MSE,
    HolderMITrainer_BCE,
    HolderMITrainer_noMI_noHD,
    HolderMITrainer_noHD,
    HolderMITrainer_noMI,
    HolderMITrainer_alpha1p05,
    HolderMITrainer_alpha1p08,
    HolderMITrainer_alpha1p10,
    HolderMITrainer_alpha1p15,
    HolderMITrainer_alpha1p20,
)
"""The paper's optimiser (Tables II, III), divergences (Table IV), ablation (Table V), α (Table VIII)."""

ALL_TRAINERS = (*NETWORKS, *PAPER_TABLES, *SCHEDULE_VARIANTS)

# the generated schedule variants are attributes of this package too, as the hand-written classes are
globals().update({trainer.__name__: trainer for trainer in SCHEDULE_VARIANTS})

__all__ = [t.__name__ for t in ALL_TRAINERS] + ["ALL_TRAINERS", "NETWORKS", "PAPER_TABLES"]
