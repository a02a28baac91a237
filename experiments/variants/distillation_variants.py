"""A distillation weight tried on the validation cases before the ceiling comparison's test run.

The product distillation trainers weigh the term D(p_S ‖ sg(p_full)) with λ_kd = 1, where it is
about a thousandth of the loss (its value near agreement is about a twelfth of a KL divergence, and
most voxels agree); this tries a hundred times that on the input-fusion network at the demo's
200 × 20 schedule (docs/records/ceiling.md, "Distillation").
"""

from nnunet_holder.trainers import HolderMITrainer_inputFusion_distill_demo


class HolderMITrainer_inputFusion_distill100_demo(HolderMITrainer_inputFusion_distill_demo):
    lambda_kd = 100.0
