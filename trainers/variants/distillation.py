"""Distillation trainers: the knowledge-distillation reading of the paper's Hölder term.

The paper calls its Hölder term "knowledge distillation" (Tables V and VIII) but writes it against
the labels (Eq. 7), which is what every other Holder trainer keeps. These trainers add the other
reading beside it: for each subset S of the step, λ_kd · D_{α,γ}(p_S ‖ sg(p_full)), the proper
Hölder divergence (`SoftHolderDivergenceLoss`, zero iff the two predictions agree) from the
subset's prediction to the full set's prediction of the same forward pass, the full set a detached
teacher (α the trainer's `alpha`, γ = 1), at temperature `kd_temperature` and at every
deep-supervision scale with nnU-Net's weights (`HolderMILoss`). The label terms (Dice + Hölder
against the labels) and the MI term stay. A variant that tries another weight or temperature sets
`lambda_kd` or `kd_temperature` (default 1). Hosts: the input-fusion network (nnU-Net's own U-Net,
the network modality dropout trains) and the feature-fusion network, each with its subset schedule
(2 and 4 subsets per step, the full set always among them, so every step has its teacher).
`HolderMITrainer_inputFusion_distill_singlesHalf_sample3` trains 3 subsets a step (the full set and
two drawn) and draws a single modality half of the time (`single_modality_share`), where a unified
model is furthest from dedicated per-subset models (the comparison that chose it:
docs/records/ceiling.md).
"""

from nnunet_holder.trainers.variants.feature_fusion import HolderMITrainer_featureFusion
from nnunet_holder.trainers.variants.input_fusion import HolderMITrainer_inputFusion


class HolderMITrainer_inputFusion_distill(HolderMITrainer_inputFusion):
    """Input fusion with each subset's prediction distilled from the full set's (λ_kd = 1)."""

    lambda_kd = 1.0


class HolderMITrainer_featureFusion_distill(HolderMITrainer_featureFusion):
    """Feature fusion with each subset's prediction distilled from the full set's (λ_kd = 1)."""

    lambda_kd = 1.0


class HolderMITrainer_inputFusion_distill_singlesHalf_sample3(HolderMITrainer_inputFusion_distill):
    """Input-fusion distillation, 3 subsets a step (the full set and two drawn), singles half the draws."""

    subsets_per_step = 3
    single_modality_share = 0.5
