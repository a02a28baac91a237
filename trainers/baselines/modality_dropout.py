"""nnU-Net with random modality dropout: each training sample keeps a random non-empty subset.

The subset is uniform over the 2^M - 1 non-empty subsets (the full set included), drawn per sample
and step, inside the modalities the case has (dataset.json's record of incomplete cases,
`nnunet_holder.availability`: a channel the case lacks is never kept); dropped channels are
multiplied by 0, which is what a zero-filled missing file becomes after nnU-Net's preprocessing.
Multiplying instead of skipping keeps every parameter in use, as DDP requires. Validation sees all
modalities. `_fullHalf` keeps every modality on half the samples (the other half draws as above): on
the demo's scale it learns enhancing tumour on every seed within the demo's budget, where uniform
dropout missed it on one seed of three (docs/records/demo_record.md, "Dropout that keeps the full
set on half the samples").
"""

import torch
from nnunet_holder.trainers.overrides import OverridesMixin
from nnunet_holder.trainers.setup_checks import refuse_unsupported_setup
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_holder.availability import absent_channels, batch_available
from nnunet_holder.subsets import all_subsets, subset_mask


class nnUNetTrainerModalityDropout(OverridesMixin, nnUNetTrainer):
    """nnU-Net's trainer; each training sample keeps a uniform random non-empty subset of its modalities."""

    full_set_probability: float = 0.0
    """Probability that a sample keeps every modality whatever its uniform draw."""

    def initialize(self) -> None:
        refuse_unsupported_setup(self, uses_modality_norms=False)
        super().initialize()
        self.absent = absent_channels(self.dataset_json)

    def keep_mask(
        self, batch_size: int, num_modalities: int, available: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, M) 0/1 mask of the modalities each sample keeps: a uniform non-empty subset, replaced by
        the full set with probability `full_set_probability`. With `available` (B, M), the mask of
        what each case has, an incomplete case draws uniformly among the non-empty subsets of what it
        has, and its full set is that."""
        masks = subset_mask(all_subsets(num_modalities), num_modalities)
        keep = masks[torch.randint(len(masks), (batch_size,))]
        # incomplete cases draw again, inside their set: complete batches keep the random stream of
        # the recorded runs
        incomplete = [] if available is None else (available < 1).any(1).nonzero().flatten().tolist()
        for row in incomplete:
            inside = masks[(masks <= available[row]).all(1)]
            keep[row] = inside[torch.randint(len(inside), ())]
        # drawn only when used, so uniform dropout's random stream (and its recorded runs) is unchanged
        if self.full_set_probability > 0:
            full = torch.rand(batch_size) < self.full_set_probability
            keep[full] = 1.0 if available is None else available[full]
        return keep

    def train_step(self, batch: dict) -> dict:
        data = batch["data"]
        available = batch_available(self.absent, batch, data.shape[1])
        keep = self.keep_mask(data.shape[0], data.shape[1], available)
        batch = {**batch, "data": data * keep.view(*keep.shape, *[1] * (data.ndim - 2)).to(data.dtype)}
        return super().train_step(batch)


class nnUNetTrainerModalityDropout_fullHalf(nnUNetTrainerModalityDropout):
    """Modality dropout that keeps every modality on half the samples."""

    full_set_probability = 0.5
