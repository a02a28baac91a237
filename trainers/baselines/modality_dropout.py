"""nnU-Net with random modality dropout: each training sample keeps a random non-empty subset.

The subset is uniform over the 2^M - 1 non-empty subsets (the full set included), drawn per
sample and step; dropped channels are multiplied by 0, which is what a zero-filled missing file
becomes after nnU-Net's preprocessing. Multiplying instead of skipping keeps every parameter in
use, as DDP requires. Validation sees all modalities.
"""

import torch
from nnunet_holder.trainers.overrides import DEMO, FIVE_EPOCHS, SMALL, SMOKE, OverridesMixin
from nnunet_holder.trainers.setup_checks import refuse_unsupported_setup
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_holder.subsets import all_subsets, subset_mask


class nnUNetTrainerModalityDropout(OverridesMixin, nnUNetTrainer):
    def initialize(self) -> None:
        refuse_unsupported_setup(self, uses_modality_norms=False)
        super().initialize()

    def train_step(self, batch: dict) -> dict:
        data = batch["data"]
        masks = subset_mask(all_subsets(data.shape[1]), data.shape[1])
        keep = masks[torch.randint(len(masks), (data.shape[0],))]
        batch = {**batch, "data": data * keep.view(*keep.shape, *[1] * (data.ndim - 2)).to(data.dtype)}
        return super().train_step(batch)


class nnUNetTrainerModalityDropout_5epochs(nnUNetTrainerModalityDropout):
    overrides = FIVE_EPOCHS


class nnUNetTrainerModalityDropout_smoke(nnUNetTrainerModalityDropout):
    overrides = SMOKE


class nnUNetTrainerModalityDropout_small(nnUNetTrainerModalityDropout):
    overrides = SMALL


class nnUNetTrainerModalityDropout_demo(nnUNetTrainerModalityDropout):
    overrides = DEMO
