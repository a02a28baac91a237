"""What the project's networks share: the interface, the modality-aware encoder, MI heads.

The two modality-parallel networks run one shared nnU-Net encoder (the plans' PlainConvUNet or
ResidualEncoderUNet, one input channel, features scaled by `width`, a `ModalityNorm` in place of
every normalization) on each available modality, folded into the batch, (B, k, ...) ->
(B*k, 1, ...). They differ in where the modalities meet: `ModalityParallelNet` (the paper)
decodes every modality alone and averages the logits; `FeatureFusionNet` fuses the encoder
features at every skip level and decodes once. `InputFusionNet` is the third place: the plans'
own U-Net on all channels, absent ones zeroed. All expose the same explicit methods, which the
trainer, the predictor and the evaluation call (never flags set from outside):

- `training_output(x, subsets)`: every modality runs; the loss's inputs for the (S, M) subsets,
  fused logits per subset and scale and the MI terms (every parameter used, as DDP requires);
- `predict(x, available)`: the fused logits over the available modalities;
- `subset_logits(x, subsets)`: the fused logits of each subset, for the one-pass evaluation;
- `image_passes(available, subsets)`: what one input costs, which sizes the predictor's batches.

`forward` dispatches on its arguments alone, which keeps it traceable by torch.compile.
"""

from __future__ import annotations

import pydoc
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar

import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet
from nnunet_holder.architectures.modality_norm import FoldedModalities, ModalityNorm
from torch import nn

from nnunet_holder.losses.mi import MIRegressor

SUPPORTED_BACKBONES: tuple[type[nn.Module], ...] = (PlainConvUNet, ResidualEncoderUNet)

_CHANNEL_MISMATCH_HINT = (
    "nnU-Net shifts the remaining channel files down when a case lacks one, which would feed one "
    "modality through another's normalization; give every channel (zero-filled files for missing "
    "modalities) or use `nnunet-holder predict`, which handles missing files."
)


def scale_features(features: int | Sequence[int], width: float) -> list[int] | int:
    """Features per stage multiplied by `width`, rounded, at least 1."""
    if isinstance(features, int):
        return max(1, round(features * width))
    return [max(1, round(f * width)) for f in features]


def present_modalities(x: torch.Tensor) -> torch.Tensor:
    """Indices (k,) of the channels of x (B, M, ...) that are not exactly zero; all M when none is.

    The fallback of the plain `nnUNetv2_predict` path, which hands the network tiles, not cases:
    a channel that is zero over the whole tile counts as missing. Callers that know a case's
    modalities (`nnunet-holder predict`, evaluation, the final validation) pass them instead.
    """
    present = x.detach().flatten(2).ne(0).any(dim=2).any(dim=0)
    present = torch.where(present.any(), present, torch.ones_like(present))
    return present.nonzero().flatten()


class ModalityNetwork(nn.Module, ABC):
    """Base of the modality-parallel networks: the shared encoder, its folding, MI heads, dispatch.

    Args:
        backbone_class: PlainConvUNet or ResidualEncoderUNet (or a dotted path to one).
        backbone_kwargs: the plans' `network_arch_init_kwargs` with imports resolved, without
            input_channels / num_classes / deep_supervision.
        num_modalities: M, the number of input channels, one per modality.
        num_classes: output channels (nnU-Net's number of segmentation heads).
        width: factor on the backbone's features per stage (0.5 is the paper's setting).
        deep_supervision (the subclasses' keyword, passed to their decoder): the initial state;
            nnU-Net toggles it through `network.decoder`.
        mi_stages: how many of the deepest encoder stages carry an MI regressor (1 = bottleneck).

    Shapes: input x (B, M, *spatial); `available` a LongTensor (k,) of modality indices;
    `subsets` an (S, M) 0/1 mask (`training_output` also takes (B, S, M), subsets per sample).
    """

    uses_modality_norms: ClassVar[bool] = True
    """Whether the backbone's norms are `ModalityNorm`s (BatchNorm plans are then refused)."""

    def __init__(
        self,
        backbone_class: type[nn.Module] | str,
        backbone_kwargs: dict,
        num_modalities: int,
        num_classes: int,
        width: float = 0.5,
        mi_stages: int = 1,
    ) -> None:
        super().__init__()
        if isinstance(backbone_class, str):
            backbone_class = pydoc.locate(backbone_class)
        if backbone_class not in SUPPORTED_BACKBONES:
            names = ", ".join(c.__name__ for c in SUPPORTED_BACKBONES)
            raise ValueError(f"unsupported backbone {backbone_class}; supported: {names}")
        if num_modalities < 2:
            raise ValueError(f"a modality-parallel network needs at least 2 modalities, got {num_modalities}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        kwargs = dict(backbone_kwargs)
        self.base_norm = kwargs.get("norm_op")
        if self.base_norm is None:
            raise ValueError("the plans' architecture has no norm_op; modality-specific norms need one")
        self.base_norm_kwargs = dict(kwargs.get("norm_op_kwargs") or {})
        kwargs["features_per_stage"] = scale_features(kwargs["features_per_stage"], width)
        for key in ("stem_channels", "bottleneck_channels"):
            if kwargs.get(key) is not None:
                kwargs[key] = scale_features(kwargs[key], width)
        self._folded = FoldedModalities()
        kwargs["norm_op"] = ModalityNorm
        kwargs["norm_op_kwargs"] = {
            **self.base_norm_kwargs,
            "base_norm": self.base_norm,
            "num_modalities": num_modalities,
            "folded": self._folded,
        }
        self.scaled_kwargs = kwargs
        self.backbone_class = backbone_class
        self.num_modalities = num_modalities
        self.num_classes = num_classes
        self.width = width
        self.mi_stages = mi_stages

    def make_backbone(self, deep_supervision: bool) -> nn.Module:
        """The plans' U-Net with one input channel, scaled features and modality norms, initialised."""
        backbone = self.backbone_class(
            input_channels=1, num_classes=self.num_classes, deep_supervision=deep_supervision,
            **self.scaled_kwargs,
        )
        backbone.apply(backbone.initialize)
        return backbone

    def image_passes(self, available: int, subsets: int | None = None) -> int:
        """Backbone passes one input image costs: the `available` modalities' encoders, or all M
        when the per-subset logits of `subsets` subsets are asked for (each modality runs once)."""
        return available if subsets is None else self.num_modalities

    def make_mi_regressors(self, encoder: nn.Module) -> nn.ModuleList:
        """One MI regressor per MI stage, on the deepest `mi_stages` encoder outputs."""
        channels = list(encoder.output_channels)
        if not 1 <= self.mi_stages <= len(channels):
            raise ValueError(f"mi_stages must be in 1..{len(channels)}, got {self.mi_stages}")
        return nn.ModuleList(MIRegressor(c, encoder.conv_op) for c in channels[-self.mi_stages :])

    @classmethod
    def from_plans(
        cls, configuration_manager, num_modalities: int, num_classes: int, **options
    ) -> ModalityNetwork:
        """Build from an nnU-Net ConfigurationManager (the plans' architecture); `options` as __init__."""
        kwargs = dict(configuration_manager.network_arch_init_kwargs)
        for key in configuration_manager.network_arch_init_kwargs_req_import:
            if kwargs.get(key) is not None:
                kwargs[key] = pydoc.locate(kwargs[key])
        return cls(
            configuration_manager.network_arch_class_name,
            kwargs,
            num_modalities=num_modalities,
            num_classes=num_classes,
            **options,
        )

    @contextmanager
    def folded(self, modalities: torch.Tensor, batch: int) -> Iterator[None]:
        """Tell every ModalityNorm that the folded batch holds `modalities` (k,) for each of `batch` cases."""
        with self.folded_index(modalities.repeat(batch)):
            yield

    @contextmanager
    def folded_index(self, index: torch.Tensor) -> Iterator[None]:
        """Tell every ModalityNorm the affine group of each element of the batch, `index` (N,)."""
        self._folded.index = index
        try:
            yield
        finally:
            self._folded.index = None

    def check_channels(self, x: torch.Tensor) -> None:
        if x.shape[1] != self.num_modalities:
            raise ValueError(
                f"expected {self.num_modalities} input channels (one per modality), got {x.shape[1]}. "
                + _CHANNEL_MISMATCH_HINT
            )

    def check_subsets(self, subsets: torch.Tensor, device: torch.device) -> torch.Tensor:
        """The (S, M) mask, or (B, S, M) per sample (`training_output` only), as float32 on `device`,
        after checking its shape and that no row is empty."""
        if subsets.dim() not in (2, 3) or subsets.shape[-1] != self.num_modalities:
            raise ValueError(
                f"subset mask must be (S, {self.num_modalities}) or (B, S, {self.num_modalities}), "
                f"got {tuple(subsets.shape)}"
            )
        if not bool((subsets.sum(-1) > 0).all()):
            raise ValueError("every subset of the mask needs at least one modality")
        return subsets.to(device, torch.float32)

    def available_or_present(self, x: torch.Tensor, available: torch.Tensor | None) -> torch.Tensor:
        """`available` on x's device, or the non-zero channels of x when it is None."""
        self.check_channels(x)
        return (present_modalities(x) if available is None else available).to(x.device)

    def forward(
        self, x: torch.Tensor, subsets: torch.Tensor | None = None, available: torch.Tensor | None = None
    ) -> torch.Tensor | dict:
        """`training_output(x, subsets)` when subsets are given, else `predict(x, available)`.

        nnU-Net's predictor calls `network(tile)` with one argument: the fused prediction over the
        tile's non-zero channels. The trainer passes its step's subsets (through DDP and compile).
        """
        if subsets is not None:
            return self.training_output(x, subsets)
        return self.predict(x, available)

    @abstractmethod
    def training_output(self, x: torch.Tensor, subsets: torch.Tensor) -> dict:
        """Every modality runs. `subsets` is (S, M), or (B, S, M) when each sample has its own subsets
        (inside what an incomplete case has; the MI teacher is then each sample's union of its
        subsets, its available set). Returns "logits" (list over deep-supervision scales of fused logits
        (B, S, C, *spatial_k)), "subset_mask" (the mask given), "mi_pred" (list over MI stages of
        (B, S, F, *s)), "mi_target" (list of (B, F, *s)) and "mi_var" (list of (F,))."""

    @abstractmethod
    def predict(self, x: torch.Tensor, available: torch.Tensor | None = None) -> torch.Tensor:
        """Fused logits (B, C, *spatial) over `available` (default: the non-zero channels of x)."""

    @abstractmethod
    def subset_logits(self, x: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
        """Fused full-resolution logits (B, S, C, *spatial) of every subset of the (S, M) mask."""
