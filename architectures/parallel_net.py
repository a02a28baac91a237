"""The modality-parallel network: one shared nnU-Net backbone applied to every MRI modality.

The backbone is the plans' own architecture (PlainConvUNet or ResidualEncoderUNet from
dynamic-network-architectures) built with one input channel, its features scaled by `width`, and
a `ModalityNorm` in place of every normalization layer. The modalities are folded into the
batch, (B, k, ...) -> (B*k, 1, ...), so every modality goes through the same convolutions in one
batched pass. Outputs are fused by averaging logits over the available modalities (the paper's
Dynamic Combination), either plainly or, with `learned_fusion`, weighted per modality and class
by learned weights (one of the paper's "flexible fusion operators"; still linear in the logits,
so the one-pass evaluation of every subset stays exact). The network has one explicit method per
use: `training_output` (every modality runs; everything the loss needs, MI regressors included,
so DistributedDataParallel sees every parameter used), `predict` (only the available modalities
run) and `per_modality_logits` (for the one-pass evaluation). `forward` dispatches on its
arguments alone, never on flags other objects set, which keeps it traceable by torch.compile.
"""

from __future__ import annotations

import pydoc
from collections.abc import Sequence

import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet
from nnunet_holder.architectures.modality_norm import FoldedModalities, ModalityNorm
from torch import nn

from nnunet_holder.losses.mi import MIRegressor
from nnunet_holder.subsets import fusion_weights

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


class ModalityParallelNet(nn.Module):
    """Shared backbone over M modalities with per-modality norms, logit fusion and MI regressors.

    Args:
        backbone_class: PlainConvUNet or ResidualEncoderUNet (or a dotted path to one).
        backbone_kwargs: the plans' `network_arch_init_kwargs` with imports resolved, without
            input_channels / num_classes / deep_supervision.
        num_modalities: M, the number of input channels, one per modality.
        num_classes: output channels (nnU-Net's number of segmentation heads).
        width: factor on the backbone's features per stage (0.5 is the paper's setting).
        deep_supervision: initial state; nnU-Net toggles it through `network.decoder`.
        mi_stages: how many of the deepest encoder stages carry an MI regressor (1 = bottleneck).
        learned_fusion: fuse with learned per-(modality, class) weights instead of the plain mean.

    Shapes: input x (B, M, *spatial); `available` a LongTensor (k,) of modality indices;
    `subsets` an (S, M) 0/1 mask. See the methods for the outputs.
    """

    def __init__(
        self,
        backbone_class: type[nn.Module] | str,
        backbone_kwargs: dict,
        num_modalities: int,
        num_classes: int,
        width: float = 0.5,
        deep_supervision: bool = True,
        mi_stages: int = 1,
        learned_fusion: bool = False,
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
        base_norm = kwargs.get("norm_op")
        if base_norm is None:
            raise ValueError("the plans' architecture has no norm_op; modality-specific norms need one")
        kwargs["features_per_stage"] = scale_features(kwargs["features_per_stage"], width)
        for key in ("stem_channels", "bottleneck_channels"):
            if kwargs.get(key) is not None:
                kwargs[key] = scale_features(kwargs[key], width)
        self._folded = FoldedModalities()
        kwargs["norm_op"] = ModalityNorm
        kwargs["norm_op_kwargs"] = {
            **(kwargs.get("norm_op_kwargs") or {}),
            "base_norm": base_norm,
            "num_modalities": num_modalities,
            "folded": self._folded,
        }
        self.backbone = backbone_class(
            input_channels=1, num_classes=num_classes, deep_supervision=deep_supervision, **kwargs
        )
        self.backbone.apply(self.backbone.initialize)
        self.num_modalities = num_modalities
        self.num_classes = num_classes
        self.width = width

        encoder_channels = list(self.backbone.encoder.output_channels)
        if not 1 <= mi_stages <= len(encoder_channels):
            raise ValueError(f"mi_stages must be in 1..{len(encoder_channels)}, got {mi_stages}")
        conv_op = self.backbone.encoder.conv_op
        self.mi_regressors = nn.ModuleList(MIRegressor(c, conv_op) for c in encoder_channels[-mi_stages:])
        # log-weights β (M, C); zeros give the plain mean, which is where learning starts
        self.fusion_logits = (
            nn.Parameter(torch.zeros(num_modalities, num_classes)) if learned_fusion else None
        )

    @property
    def decoder(self) -> nn.Module:
        """The backbone's decoder; nnU-Net switches deep supervision through `network.decoder`."""
        return self.backbone.decoder

    def fusion(self, mask: torch.Tensor) -> torch.Tensor:
        """(S, M, C) float32 weights fusing the per-modality logits of the subsets in the (S, M) mask."""
        mask = mask.float()
        if self.fusion_logits is None:
            return fusion_weights(mask).unsqueeze(-1).expand(-1, -1, self.num_classes)
        return fusion_weights(mask, self.fusion_logits.float())

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

    def _check_channels(self, x: torch.Tensor) -> None:
        if x.shape[1] != self.num_modalities:
            raise ValueError(
                f"expected {self.num_modalities} input channels (one per modality), got {x.shape[1]}. "
                + _CHANNEL_MISMATCH_HINT
            )

    def _run_backbone(self, x: torch.Tensor, modalities: torch.Tensor) -> tuple[list, torch.Tensor | list]:
        """Encoder skips and decoder output of the modalities (k,) of x (B, k, ...) folded into the batch."""
        b, k = x.shape[0], x.shape[1]
        self._folded.index = modalities.to(x.device).repeat(b)
        try:
            skips = self.backbone.encoder(x.reshape(b * k, 1, *x.shape[2:]))
            return skips, self.backbone.decoder(skips)
        finally:
            self._folded.index = None

    def per_modality_logits(self, x: torch.Tensor, available: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, k, C, *spatial) of each available modality alone (all M by default), unfused."""
        self._check_channels(x)
        if available is None:
            available = torch.arange(self.num_modalities, device=x.device)
        _, out = self._run_backbone(x.index_select(1, available.to(x.device)), available)
        out = out[0] if isinstance(out, (list, tuple)) else out  # highest resolution
        return out.view(x.shape[0], -1, *out.shape[1:])

    def predict(self, x: torch.Tensor, available: torch.Tensor | None = None) -> torch.Tensor:
        """Fused logits (B, C, *spatial) over `available` (default: the non-zero channels of x).

        Only the available modalities run, so the cost grows with k, not M.
        """
        self._check_channels(x)
        if available is None:
            available = present_modalities(x)
        available = available.to(x.device)
        per_modality = self.per_modality_logits(x, available)
        mask = torch.zeros(1, self.num_modalities, device=x.device).index_fill_(1, available, 1.0)
        weights = self.fusion(mask)[0].index_select(0, available).to(per_modality.dtype)
        return torch.einsum("kc,bkc...->bc...", weights, per_modality)

    def training_output(self, x: torch.Tensor, subsets: torch.Tensor) -> dict:
        """Every modality runs; the loss's inputs for the subsets in the (S, M) mask.

        Returns a dict: "logits" (list over deep-supervision scales of (B, M, C, *spatial_k)),
        "subset_mask" (S, M), "fusion" (S, M, C) the weights of each subset's fusion, "mi_pred"
        (list over MI stages of (B, S, F, *s)), "mi_target" (list of (B, F, *s)) and "mi_var"
        (list of (F,)).
        """
        self._check_channels(x)
        if subsets.dim() != 2 or subsets.shape[1] != self.num_modalities:
            raise ValueError(f"subset mask must be (S, {self.num_modalities}), got {tuple(subsets.shape)}")
        subsets = subsets.to(x.device, torch.float32)
        b, m = x.shape[0], self.num_modalities
        skips, out = self._run_backbone(x, torch.arange(m, device=x.device))
        outs = out if isinstance(out, (list, tuple)) else [out]
        logits = [o.view(b, m, *o.shape[1:]) for o in outs]
        weights = fusion_weights(subsets)
        s = weights.shape[0]
        mi_pred, mi_target, mi_var = [], [], []
        for regressor, feat in zip(self.mi_regressors, skips[-len(self.mi_regressors) :], strict=True):
            per_modality = feat.view(b, m, *feat.shape[1:])
            subset_feats = torch.einsum("sm,bm...->bs...", weights.to(feat.dtype), per_modality)
            mu = regressor(subset_feats.reshape(b * s, *feat.shape[1:]))
            mi_pred.append(mu.view(b, s, *mu.shape[1:]))
            mi_target.append(per_modality.mean(dim=1))
            mi_var.append(regressor.variance())
        return {
            "logits": logits,
            "subset_mask": subsets,
            "fusion": self.fusion(subsets),
            "mi_pred": mi_pred,
            "mi_target": mi_target,
            "mi_var": mi_var,
        }


def build_from_plans(
    configuration_manager,
    num_modalities: int,
    num_classes: int,
    width: float = 0.5,
    deep_supervision: bool = True,
    mi_stages: int = 1,
    learned_fusion: bool = False,
) -> ModalityParallelNet:
    """Build the network from an nnU-Net ConfigurationManager (the plans' architecture)."""
    kwargs = dict(configuration_manager.network_arch_init_kwargs)
    for key in configuration_manager.network_arch_init_kwargs_req_import:
        if kwargs.get(key) is not None:
            kwargs[key] = pydoc.locate(kwargs[key])
    return ModalityParallelNet(
        configuration_manager.network_arch_class_name,
        kwargs,
        num_modalities=num_modalities,
        num_classes=num_classes,
        width=width,
        deep_supervision=deep_supervision,
        mi_stages=mi_stages,
        learned_fusion=learned_fusion,
    )
