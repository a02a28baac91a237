"""HolderPredictor: nnU-Net's predictor that knows which modalities each case has.

Everything stays nnU-Net's (preprocessing, sliding window with Gaussian weighting, mirroring,
fold ensembling, export to the original geometry) with three changes. The available modalities
are decided once per case, from the whole preprocessed case (a channel that is zero over the
whole case is missing: nnU-Net's cropping and normalisation keep an all-zero channel exactly
zero), and every tile of that case is predicted with the same set, so only those modalities run.
The sliding-window accumulator is float32 and can hold several heads, which lets one pass return
the fused logits of every modality subset for the all-subset evaluation (the network's
`subset_logits`: every modality's encoder once per tile, each fold with its own weights, the
folds then averaged, so the evaluation equals predicting each subset with the ensemble). A
network that is not modality-parallel (vanilla nnU-Net) simply gets the zero-filled channels.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.inference.sliding_window_prediction import compute_gaussian
from nnunetv2.utilities.helpers import empty_cache
from torch._dynamo import OptimizedModule
from tqdm import tqdm

from nnunet_holder.architectures import ModalityNetwork
from nnunet_holder.subsets import subset_mask


def present_channels(data: torch.Tensor) -> tuple[int, ...]:
    """Channels of a (C, *spatial) case that are not exactly zero everywhere."""
    flat = data.reshape(data.shape[0], -1)
    return tuple(int(i) for i in torch.nonzero(flat.ne(0).any(dim=1)).flatten())


class HolderPredictor(nnUNetPredictor):
    """nnUNetPredictor with per-case modality availability and a float32 multi-head accumulator."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._available: torch.Tensor | None = None  # modalities of the case being predicted
        self._subsets: torch.Tensor | None = None  # (S, M): tiles return every subset's fused logits
        self.last_available: tuple[int, ...] | None = None
        # image passes (mirrored copies x modalities run) per network call; halved on out-of-memory.
        # On the CPU batches beyond 4 passes got slower per pass (docs/benchmarks.md); on a GPU all 8
        # copies of a four-modality tile go in one call.
        self.batch_limit = 4 if self.device.type == "cpu" else 32

    def parallel_network(self) -> ModalityNetwork | None:
        net = self.network._orig_mod if isinstance(self.network, OptimizedModule) else self.network
        net = getattr(net, "module", net)  # DDP, when the trainer hands its network over
        net = net._orig_mod if isinstance(net, OptimizedModule) else net
        return net if isinstance(net, ModalityNetwork) else None

    def predict_logits_from_preprocessed_data(self, data: torch.Tensor) -> torch.Tensor:
        """nnU-Net's fold ensemble of one preprocessed case (C, *spatial), float32 logits on the CPU."""
        if self.list_of_parameters is None:  # manual initialisation by a trainer: current weights
            return self.predict_sliding_window_return_logits(data).to("cpu")
        return super().predict_logits_from_preprocessed_data(data)

    @torch.inference_mode()
    def predict_sliding_window_return_logits(self, input_image: torch.Tensor) -> torch.Tensor:
        """nnU-Net's sliding window over one case, every tile fused over the case's modalities."""
        available = present_channels(input_image)
        if not available:
            raise ValueError("every input channel is zero: no modality available")
        self.last_available = available
        if self.parallel_network() is None or self._subsets is not None:
            return super().predict_sliding_window_return_logits(input_image)
        self._available = torch.tensor(available, dtype=torch.long, device=self.device)
        try:
            return super().predict_sliding_window_return_logits(input_image)
        finally:
            self._available = None

    @torch.inference_mode()
    def predict_subset_logits(self, data: torch.Tensor, subsets: Sequence[tuple[int, ...]]) -> torch.Tensor:
        """Fused logits (S, C, *spatial) of every subset from one sliding-window pass per fold.

        Each tile runs every modality's encoder once and returns the S subsets' fused logits
        (`subset_logits`); the tiles are aggregated as nnU-Net aggregates one output, so each
        subset equals predicting with only that subset available, up to float rounding.
        """
        net = self.parallel_network()
        if net is None:
            raise TypeError("per-subset logits need a modality-parallel network (a HolderMITrainer model)")
        c = self.label_manager.num_segmentation_heads
        self._subsets = subset_mask(list(subsets), net.num_modalities).to(self.device)

        def fused() -> torch.Tensor:
            logits = self.predict_sliding_window_return_logits(data).to("cpu")
            return logits.view(len(subsets), c, *data.shape[1:])

        try:
            if self.list_of_parameters is None:
                return fused()
            total = None
            for params in self.list_of_parameters:
                net.load_state_dict(params)
                logits = fused()
                total = logits if total is None else total.add_(logits)
            return total / len(self.list_of_parameters)
        finally:
            self._subsets = None

    def _network_output(self, x: torch.Tensor) -> torch.Tensor:
        net = self.parallel_network()
        if net is None:
            return self.network(x)
        if self._subsets is not None:
            out = net.subset_logits(x, self._subsets)  # (B, S, C, *spatial) -> S*C heads
            return out.reshape(out.shape[0], -1, *out.shape[3:])
        return self.network(x, available=self._available)

    def _passes_per_copy(self) -> int:
        """Backbone passes one tile copy costs, as the network counts them (`image_passes`)."""
        net = self.parallel_network()
        if net is None or (self._available is None and self._subsets is None):
            return 1
        if self._subsets is not None:
            return net.image_passes(net.num_modalities, subsets=self._subsets.shape[0])
        return net.image_passes(len(self._available))

    def _mirrors(self, x: torch.Tensor) -> list[tuple[int, ...]]:
        """nnU-Net's test-time flips of a tile, in its order; () is the unflipped tile."""
        if not self.use_mirroring or self.allowed_mirroring_axes is None:
            return [()]
        if max(self.allowed_mirroring_axes) > x.ndim - 3:
            raise ValueError(f"mirror axes {self.allowed_mirroring_axes} do not match a {x.ndim - 2}-D input")
        axes = [a + 2 for a in self.allowed_mirroring_axes]
        return [()] + [c for i in range(len(axes)) for c in itertools.combinations(axes, i + 1)]

    @torch.inference_mode()
    def _internal_maybe_mirror_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        # nnU-Net's test-time mirroring, with the mirrored copies folded into the batch instead of one
        # network call each: batch-1 convolutions are PyTorch's slow path on the CPU and latency-bound
        # on a GPU, and a one-modality tile is batch 1. A call holds at most `batch_limit` image
        # passes (copies x the modalities a modality-parallel network runs): measured on the CPU,
        # batches beyond about 4 passes get slower per pass (docs/benchmarks.md). The copies are
        # summed in nnU-Net's order, so only float rounding differs.
        flips = self._mirrors(x)
        prediction = None
        start = 0
        while start < len(flips):
            group = flips[start : start + max(1, self.batch_limit // self._passes_per_copy())]
            batch = torch.cat([torch.flip(x, f) if f else x for f in group])
            try:
                out = self._network_output(batch)
            except torch.OutOfMemoryError:
                if len(group) == 1:
                    raise
                empty_cache(self.device)
                self.batch_limit = max(1, self.batch_limit // 2)  # for the rest of this run too
                continue
            for f, o in zip(group, out.split(x.shape[0]), strict=True):
                o = torch.flip(o, f) if f else o
                prediction = o.clone() if prediction is None else prediction.add_(o)
            start += len(group)
        if len(flips) > 1:
            prediction /= len(flips)
        return prediction

    @torch.inference_mode()
    def _internal_predict_sliding_window_return_logits(
        self, data: torch.Tensor, slicers: Sequence, do_on_device: bool = True
    ) -> torch.Tensor:
        # nnU-Net's loop accumulates in float16 with one head per output channel; float32 keeps
        # the S subsets' heads as accurate as predicting each subset on its own
        results_device = self.device if do_on_device else torch.device("cpu")
        heads = self.label_manager.num_segmentation_heads
        if self._subsets is not None:
            heads *= self._subsets.shape[0]
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
