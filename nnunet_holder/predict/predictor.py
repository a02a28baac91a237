"""HolderPredictor: nnU-Net's predictor that knows which modalities each case has.

Everything stays nnU-Net's (preprocessing, sliding window with Gaussian weighting, mirroring,
fold ensembling, export to the original geometry) with two changes. Before each case the
available modalities are read off the preprocessed data (a channel that is zero over the whole
case is missing: nnU-Net's cropping and normalisation keep an all-zero channel exactly zero) and
handed to the modality-parallel network, so only those modalities run. And the sliding-window
accumulator is float32 and can hold several heads, which lets one pass return the logits of
every modality separately (`predict_per_modality_logits`) for the all-subset evaluation.
A network that is not modality-parallel (vanilla nnU-Net) simply gets the zero-filled channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.inference.sliding_window_prediction import compute_gaussian
from nnunetv2.utilities.helpers import empty_cache
from torch._dynamo import OptimizedModule
from tqdm import tqdm

from nnunet_holder.architectures import ModalityParallelNet


def present_channels(data: torch.Tensor) -> tuple[int, ...]:
    """Channels of a (C, *spatial) case that are not exactly zero everywhere."""
    flat = data.reshape(data.shape[0], -1)
    return tuple(int(i) for i in torch.nonzero(flat.ne(0).any(dim=1)).flatten())


class HolderPredictor(nnUNetPredictor):
    """nnUNetPredictor with per-case modality availability and a float32 multi-head accumulator."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._heads: int | None = None
        self.last_available: tuple[int, ...] | None = None

    def parallel_network(self) -> ModalityParallelNet | None:
        net = self.network._orig_mod if isinstance(self.network, OptimizedModule) else self.network
        net = getattr(net, "module", net)  # DDP, when the trainer hands its network over
        net = net._orig_mod if isinstance(net, OptimizedModule) else net
        return net if isinstance(net, ModalityParallelNet) else None

    def num_modalities(self) -> int:
        return len(self.dataset_json["channel_names"])

    def predict_logits_from_preprocessed_data(self, data: torch.Tensor) -> torch.Tensor:
        available = present_channels(data)
        if not available:
            raise ValueError("every input channel is zero: no modality available")
        self.last_available = available
        net = self.parallel_network()
        if net is None:
            return self._ensemble_logits(data)
        net.set_available(available)
        try:
            return self._ensemble_logits(data)
        finally:
            net.set_available(None)

    def predict_per_modality_logits(self, data: torch.Tensor) -> torch.Tensor:
        """One sliding-window pass over all modalities: logits (M, C, *spatial), float32.

        Gaussian aggregation and mirroring are linear in the logits, so the network's fusion of
        these over a subset S (`ModalityParallelNet.fusion`) equals the fused prediction with only S
        available (up to float rounding).
        """
        net = self.parallel_network()
        if net is None:
            raise TypeError("per-modality logits need a modality-parallel network (a HolderMITrainer model)")
        m, c = net.num_modalities, self.label_manager.num_segmentation_heads
        net.set_available(range(m))
        net.output_per_modality = True
        self._heads = m * c
        try:
            logits = self._ensemble_logits(data)
        finally:
            net.set_available(None)
            net.output_per_modality = False
            self._heads = None
        return logits.view(m, c, *logits.shape[1:])

    def _ensemble_logits(self, data: torch.Tensor) -> torch.Tensor:
        if self.list_of_parameters is None:  # manual initialisation by a trainer: current weights
            return self.predict_sliding_window_return_logits(data).to("cpu")
        return super().predict_logits_from_preprocessed_data(data)

    @torch.inference_mode()
    def _internal_predict_sliding_window_return_logits(
        self, data: torch.Tensor, slicers: Sequence, do_on_device: bool = True
    ) -> torch.Tensor:
        # nnU-Net's loop accumulates in float16 with one head per output channel; float32 keeps
        # the per-modality sums accurate enough that fusing afterwards equals fusing per tile
        results_device = self.device if do_on_device else torch.device("cpu")
        heads = self._heads or self.label_manager.num_segmentation_heads
        try:
            empty_cache(self.device)
            data = data.to(results_device)
            logits = torch.zeros((heads, *data.shape[1:]), dtype=torch.float32, device=results_device)
            counts = torch.zeros(data.shape[1:], dtype=torch.float32, device=results_device)
            gaussian = (
                compute_gaussian(
                    tuple(self.configuration_manager.patch_size),
                    sigma_scale=1.0 / 8,
                    value_scaling_factor=10,
                    device=results_device,
                ).float()
                if self.use_gaussian
                else 1.0
            )
            for sl in tqdm(slicers, disable=not self.allow_tqdm, leave=False, desc="sliding window"):
                tile = data[sl][None].to(self.device)
                pred = self._internal_maybe_mirror_and_predict(tile)[0].to(results_device, torch.float32)
                logits[sl] += pred * gaussian
                counts[sl[1:]] += gaussian
            logits /= counts
            return logits
        finally:
            empty_cache(self.device)
