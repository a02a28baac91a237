# Modality dropout that drops less often, for whether the demo's dropout learns enhancing tumour
# on every seed (validation cases): the full set kept on half the samples (`_fullHalf`, shipped),
# or each modality kept with probability 3/4 (a non-empty draw); `_fullHalf` at twice the budget,
# and at four times it (whether 400 epochs, the README's comparison, is its plateau).
import torch
from nnunet_holder.trainers import (
    nnUNetTrainerModalityDropout_demo,
    nnUNetTrainerModalityDropout_fullHalf_demo,
)


class nnUNetTrainerModalityDropout_keep75_demo(nnUNetTrainerModalityDropout_demo):
    def keep_mask(self, batch_size: int, num_modalities: int) -> torch.Tensor:
        keep = (torch.rand(batch_size, num_modalities) < 0.75).float()
        empty = keep.sum(1) == 0
        keep[empty, torch.randint(num_modalities, (int(empty.sum()),))] = 1.0
        return keep


class nnUNetTrainerModalityDropout_fullHalf_demo400(nnUNetTrainerModalityDropout_fullHalf_demo):
    overrides = {"num_epochs": 400}


class nnUNetTrainerModalityDropout_fullHalf_demo800(nnUNetTrainerModalityDropout_fullHalf_demo):
    overrides = {"num_epochs": 800}
