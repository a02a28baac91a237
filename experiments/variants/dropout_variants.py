"""Modality dropout rates on the demo's scale (docs/records/demo_record.md).

Whether the demo's dropout learns enhancing tumour on every seed: the full set kept on half the
samples (`_fullHalf`, the product's) at twice and four times the demo's budget, or each modality
kept with probability 3/4 (a non-empty draw).
"""

import torch
from nnunet_holder.trainers import (
    nnUNetTrainerModalityDropout_demo,
    nnUNetTrainerModalityDropout_fullHalf_demo,
)
from schedule_variants import DEMO400, DEMO800


class nnUNetTrainerModalityDropout_keep75_demo(nnUNetTrainerModalityDropout_demo):
    def keep_mask(
        self, batch_size: int, num_modalities: int, available: torch.Tensor | None = None
    ) -> torch.Tensor:
        keep = (torch.rand(batch_size, num_modalities) < 0.75).float()
        if available is not None:  # an incomplete case keeps only modalities it has
            keep = keep * available
        empty = keep.sum(1) == 0
        if available is None:  # the recorded runs' random stream
            keep[empty, torch.randint(num_modalities, (int(empty.sum()),))] = 1.0
        else:
            for row in empty.nonzero().flatten().tolist():
                have = available[row].nonzero().flatten()
                keep[row, have[torch.randint(len(have), ())]] = 1.0
        return keep


class nnUNetTrainerModalityDropout_fullHalf_demo400(nnUNetTrainerModalityDropout_fullHalf_demo):
    overrides = DEMO400


class nnUNetTrainerModalityDropout_fullHalf_demo800(nnUNetTrainerModalityDropout_fullHalf_demo):
    overrides = DEMO800

