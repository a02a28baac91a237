"""nnU-Net trainer classes of nnunet-holder: HolderMITrainer, its variants and the baselines.

`ALL_TRAINERS` lists every class a user can name with `-tr`; the shim module in `ext/` (the
folder `nnunet-holder trainer-path` prints) re-exports exactly these.
"""

from nnunet_holder.trainers.baselines.modality_dropout import (
    nnUNetTrainerModalityDropout,
    nnUNetTrainerModalityDropout_5epochs,
    nnUNetTrainerModalityDropout_demo,
    nnUNetTrainerModalityDropout_small,
    nnUNetTrainerModalityDropout_smoke,
)
from nnunet_holder.trainers.baselines.vanilla import (
    nnUNetTrainer_demo,
    nnUNetTrainer_small,
    nnUNetTrainer_smoke,
)
from nnunet_holder.trainers.holder_mi import HolderMITrainer
from nnunet_holder.trainers.variants.feature_fusion import (
    HolderMITrainer_featureFusion,
    HolderMITrainer_featureFusion_5epochs,
    HolderMITrainer_featureFusion_allSubsets,
    HolderMITrainer_featureFusion_allSubsets_small,
    HolderMITrainer_featureFusion_attention,
    HolderMITrainer_featureFusion_attention_small,
    HolderMITrainer_featureFusion_demo,
    HolderMITrainer_featureFusion_mean,
    HolderMITrainer_featureFusion_mean_small,
    HolderMITrainer_featureFusion_meanVariance,
    HolderMITrainer_featureFusion_meanVariance_small,
    HolderMITrainer_featureFusion_small,
    HolderMITrainer_featureFusion_smoke,
)
from nnunet_holder.trainers.variants.input_fusion import (
    HolderMITrainer_inputFusion,
    HolderMITrainer_inputFusion_5epochs,
    HolderMITrainer_inputFusion_availabilityChannels,
    HolderMITrainer_inputFusion_BCE,
    HolderMITrainer_inputFusion_demo,
    HolderMITrainer_inputFusion_fullSetWeight2,
    HolderMITrainer_inputFusion_small,
    HolderMITrainer_inputFusion_smoke,
    HolderMITrainer_inputFusion_sumSubsets,
)
from nnunet_holder.trainers.variants.loss import (
    HolderMITrainer_alpha1p05,
    HolderMITrainer_alpha1p08,
    HolderMITrainer_alpha1p10,
    HolderMITrainer_alpha1p15,
    HolderMITrainer_alpha1p20,
    HolderMITrainer_BCE,
    HolderMITrainer_Hellinger,
    HolderMITrainer_holderVolume,
    HolderMITrainer_JS,
    HolderMITrainer_KL,
    HolderMITrainer_MSE,
    HolderMITrainer_NeymanChi2,
    HolderMITrainer_noHD,
    HolderMITrainer_noMI,
    HolderMITrainer_noMI_noHD,
    HolderMITrainer_TV,
)
from nnunet_holder.trainers.variants.network import (
    HolderMITrainer_learnedFusion,
    HolderMITrainer_noDeepSupervision,
    HolderMITrainer_width1,
)
from nnunet_holder.trainers.variants.optimizer import HolderMITrainer_paper
from nnunet_holder.trainers.variants.subsets import HolderMITrainer_sample4
from nnunet_holder.trainers.variants.training_length import (
    HolderMITrainer_5epochs,
    HolderMITrainer_demo,
    HolderMITrainer_small,
    HolderMITrainer_smoke,
)

ALL_TRAINERS = (
    HolderMITrainer,
    HolderMITrainer_5epochs,
    HolderMITrainer_smoke,
    HolderMITrainer_small,
    HolderMITrainer_demo,
    HolderMITrainer_paper,
    HolderMITrainer_noMI,
    HolderMITrainer_noHD,
    HolderMITrainer_noMI_noHD,
    HolderMITrainer_holderVolume,
    HolderMITrainer_KL,
    HolderMITrainer_JS,
    HolderMITrainer_TV,
    HolderMITrainer_Hellinger,
    HolderMITrainer_NeymanChi2,
    HolderMITrainer_MSE,
    HolderMITrainer_BCE,
    HolderMITrainer_alpha1p05,
    HolderMITrainer_alpha1p08,
    HolderMITrainer_alpha1p10,
    HolderMITrainer_alpha1p15,
    HolderMITrainer_alpha1p20,
    HolderMITrainer_sample4,
    HolderMITrainer_width1,
    HolderMITrainer_learnedFusion,
    HolderMITrainer_noDeepSupervision,
    HolderMITrainer_featureFusion,
    HolderMITrainer_featureFusion_5epochs,
    HolderMITrainer_featureFusion_smoke,
    HolderMITrainer_featureFusion_small,
    HolderMITrainer_featureFusion_demo,
    HolderMITrainer_featureFusion_mean,
    HolderMITrainer_featureFusion_meanVariance,
    HolderMITrainer_featureFusion_attention,
    HolderMITrainer_featureFusion_allSubsets,
    HolderMITrainer_featureFusion_allSubsets_small,
    HolderMITrainer_featureFusion_mean_small,
    HolderMITrainer_featureFusion_meanVariance_small,
    HolderMITrainer_featureFusion_attention_small,
    HolderMITrainer_inputFusion,
    HolderMITrainer_inputFusion_5epochs,
    HolderMITrainer_inputFusion_smoke,
    HolderMITrainer_inputFusion_small,
    HolderMITrainer_inputFusion_demo,
    HolderMITrainer_inputFusion_fullSetWeight2,
    HolderMITrainer_inputFusion_sumSubsets,
    HolderMITrainer_inputFusion_BCE,
    HolderMITrainer_inputFusion_availabilityChannels,
    nnUNetTrainer_smoke,
    nnUNetTrainer_small,
    nnUNetTrainer_demo,
    nnUNetTrainerModalityDropout,
    nnUNetTrainerModalityDropout_5epochs,
    nnUNetTrainerModalityDropout_smoke,
    nnUNetTrainerModalityDropout_small,
    nnUNetTrainerModalityDropout_demo,
)

__all__ = [t.__name__ for t in ALL_TRAINERS] + ["ALL_TRAINERS"]
