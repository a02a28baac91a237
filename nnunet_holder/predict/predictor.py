"""HolderPredictor: nnU-Net's predictor that knows which modalities each case has.

Everything stays nnU-Net's (preprocessing, sliding window with Gaussian weighting, mirroring,
fold ensembling, export to the original geometry) with three changes. The available modalities
are decided once per case, from the whole preprocessed case (a channel that is zero over the
whole case is missing: nnU-Net's cropping and normalisation keep an all-zero channel exactly
zero), and every tile of that case is predicted with the same set, so only those modalities run.
The sliding-window accumulator is float32 and can hold several heads, which lets one pass return
the fused logits of every modality subset for the all-subset evaluation (the network's
`subset_logits`: every modality's encoder once per tile, each fold with its own weights, the
folds then averaged, so the evaluation equals predicting each subset with the ensemble); where
all subsets' accumulator would not fit in GPU memory they are split into groups, one pass each.
When a pass fails, its tensors are let go before nnU-Net retries it with the results in CPU
memory, as nnU-Net's own loop does. A network that is not modality-parallel (vanilla nnU-Net)
simply gets the zero-filled channels.
"""

from __future__ import annotations

import itertools
import math
import traceback
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
        # The CPU limit follows the batch timings of docs/records/benchmarks.md; on a GPU all 8 copies of
        # a four-modality tile go in one call.
        self.batch_limit = 4 if self.device.type == "cpu" else 32
        # bytes the all-subset accumulator of one pass may take; None: see `subsets_per_pass`
        self.subset_accumulator_bytes: int | None = None

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

        Each tile runs every modality's encoder once and returns the subsets' fused logits
        (`subset_logits`); the tiles are aggregated as nnU-Net aggregates one output, so each
        subset equals predicting with only that subset available, up to float rounding. Where the
        accumulator of all subsets would not fit (`subsets_per_pass`), the subsets are split into
        groups of one pass each.
        """
        net = self.parallel_network()
        if net is None:
            raise TypeError("per-subset logits need a modality-parallel network (a HolderMITrainer model)")
        c = self.label_manager.num_segmentation_heads
        per_pass = self.subsets_per_pass(len(subsets), data.shape[1:])
        groups = [list(range(i, min(i + per_pass, len(subsets)))) for i in range(0, len(subsets), per_pass)]
        folds = self.list_of_parameters or [None]  # None: a trainer's manual initialisation, current weights
        total = torch.zeros((len(subsets), c, *data.shape[1:]), dtype=torch.float32)
        for params in folds:
            if params is not None:
                net.load_state_dict(params)
            for group in groups:
                self._subsets = subset_mask([subsets[i] for i in group], net.num_modalities).to(self.device)
                try:
                    logits = self.predict_sliding_window_return_logits(data).to("cpu")
                finally:
                    self._subsets = None
                total[group[0] : group[-1] + 1] += logits.view(len(group), c, *data.shape[1:])
        if len(folds) > 1:
            total /= len(folds)
        return total

    def subsets_per_pass(self, num_subsets: int, spatial: Sequence[int]) -> int:
        """How many subsets one sliding-window pass accumulates (C float32 heads each).

        Bounded by `subset_accumulator_bytes`; when that is None, by half the GPU memory free when
        the pass starts if the accumulator lives on the GPU (nnU-Net's perform_everything_on_device),
        the rest being for the network, and not at all in CPU memory, where the result handed back
        is as large. The accumulator stays float32 rather than nnU-Net's float16, which would halve
        it: float16 rounds logits to about 5e-4 of their size, so near ties the segmentation of a
        subset in evaluate-subsets could differ from `predict` with only that subset, which this
        one-pass evaluation promises to equal. Groups keep that equality; they cost a run of every
        encoder per group, and only where memory is short.
        """
        budget = self.subset_accumulator_bytes
        if budget is None:
            if not (self.perform_everything_on_device and self.device.type == "cuda"):
                return num_subsets
            empty_cache(self.device)
            budget = torch.cuda.mem_get_info(self.device)[0] // 2
        padded = [max(s, p) for s, p in zip(spatial, self.configuration_manager.patch_size, strict=True)]
        per_subset = self.label_manager.num_segmentation_heads * math.prod(padded) * 4
        return max(1, min(num_subsets, budget // per_subset))

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
        # passes (copies x the modalities a modality-parallel network runs), since larger batches get
        # slower per pass on the CPU (docs/records/benchmarks.md). The copies are summed in nnU-Net's
        # order, so only float rounding differs.
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
        logits = counts = gaussian = tile = pred = None
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
        except RuntimeError as e:
            # nnU-Net retries with the results in CPU memory from inside its `except RuntimeError`
            # (an out-of-memory error is one), while this exception and its traceback live. As in
            # nnU-Net's own loop, this pass's tensors are let go first: ours by name, and the locals
            # of the frames it raised from (the tile and its mirrored batch) by clearing them.
            del data, logits, counts, gaussian, tile, pred
            traceback.clear_frames(e.__traceback__)
            raise
        finally:
            empty_cache(self.device)
