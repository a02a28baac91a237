"""Distillation weights tried on the validation cases before the ceiling comparison's test run.

The product distillation trainers weigh the term D(p_S ‖ sg(p_full)) with λ_kd = 1; these try ten
times that, on the input-fusion and the feature-fusion network, at the demo's 200 × 20 schedule
(docs/records/ceiling.md, "Distillation").
"""

from nnunet_holder.trainers import (
    HolderMITrainer_featureFusion_distill_demo,
    HolderMITrainer_inputFusion_distill_demo,
)


class HolderMITrainer_inputFusion_distill10_demo(HolderMITrainer_inputFusion_distill_demo):
    lambda_kd = 10.0


class HolderMITrainer_featureFusion_distill10_demo(HolderMITrainer_featureFusion_distill_demo):
    lambda_kd = 10.0
