"""The modality-parallel network: one shared nnU-Net backbone applied to every MRI modality.

The backbone is the plans' own architecture (PlainConvUNet or ResidualEncoderUNet from
dynamic-network-architectures) built with one input channel, its features scaled by `width`, and
a `ModalityNorm` in place of every normalization layer. The M modalities are folded into the
batch, (B, M, ...) -> (B*M, 1, ...), so every modality goes through the same convolutions in one
batched pass. Outputs are fused by averaging logits over the available modalities (the paper's
Dynamic Combination), either plainly or, with `learned_fusion`, weighted per modality and class
by learned weights (one of the paper's "flexible fusion operators"; still linear in the logits,
so the one-pass evaluation of every subset stays exact). In training (or in eval with deep
supervision on, as in nnU-Net's validation step) every modality runs and the forward returns
everything the loss needs, including the MI regressor outputs, so DistributedDataParallel sees
every parameter used. In inference (deep supervision off) only the available modalities run.
"""

from __future__ import annotations

import pydoc
from collections.abc import Sequence

import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet
from nnunet_holder.architectures.modality_norm import ModalityNorm
from torch import nn

from nnunet_holder.losses.mi import MIRegressor
from nnunet_holder.subsets import all_subsets, fusion_weights, subset_mask

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

    Shapes: input (B, M, *spatial). Training output: a dict with "logits" (list over deep
    supervision scales of (B, M, C, *spatial_k)), "subset_mask" (S, M), "fusion" (S, M, C) the
    weights of each subset's fusion (see `fusion`), "mi_pred" (list over MI
    stages of (B, S, F, *s)), "mi_target" (list of (B, F, *s)) and "mi_var" (list of (F,)).
    Inference output: fused logits (B, C, *spatial), or with `output_per_modality` the
    per-modality logits of the available modalities concatenated, (B, k*C, *spatial).
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
        kwargs["norm_op"] = ModalityNorm
        kwargs["norm_op_kwargs"] = {
            **(kwargs.get("norm_op_kwargs") or {}),
            "base_norm": base_norm,
            "num_modalities": num_modalities,
        }
        self.backbone = backbone_class(
            input_channels=1, num_classes=num_classes, deep_supervision=deep_supervision, **kwargs
        )
        self.backbone.apply(self.backbone.initialize)
        self.num_modalities = num_modalities
        self.num_classes = num_classes
        self.width = width
        self._norms = tuple(m for m in self.backbone.modules() if isinstance(m, ModalityNorm))

        encoder_channels = list(self.backbone.encoder.output_channels)
        if not 1 <= mi_stages <= len(encoder_channels):
            raise ValueError(f"mi_stages must be in 1..{len(encoder_channels)}, got {mi_stages}")
        conv_op = self.backbone.encoder.conv_op
        self.mi_regressors = nn.ModuleList(MIRegressor(c, conv_op) for c in encoder_channels[-mi_stages:])
        self.register_buffer(
            "subset_mask", subset_mask(all_subsets(num_modalities), num_modalities), persistent=False
        )
        # log-weights β (M, C); zeros give the plain mean, which is where learning starts
        self.fusion_logits = (
            nn.Parameter(torch.zeros(num_modalities, num_classes)) if learned_fusion else None
        )
        self.available: tuple[int, ...] | None = None
        self.output_per_modality = False

    def fusion(self, mask: torch.Tensor) -> torch.Tensor:
        """(S, M, C) float32 weights fusing the per-modality logits of the subsets in the (S, M) mask."""
        mask = mask.float()
        if self.fusion_logits is None:
            return fusion_weights(mask).unsqueeze(-1).expand(-1, -1, self.num_classes)
        return fusion_weights(mask, self.fusion_logits.float())

    @property
    def decoder(self) -> nn.Module:
        """The backbone's decoder; nnU-Net switches deep supervision through `network.decoder`."""
        return self.backbone.decoder

    def set_subsets(self, mask: torch.Tensor) -> None:
        """Use the (S, M) subset mask for the next training forwards (the trainer's schedule)."""
        if mask.dim() != 2 or mask.shape[1] != self.num_modalities:
            raise ValueError(f"subset mask must be (S, {self.num_modalities}), got {tuple(mask.shape)}")
        if (mask.sum(dim=1) == 0).any():
            raise ValueError("subset mask contains an empty subset")
        self.subset_mask = mask.to(self.subset_mask.device, self.subset_mask.dtype)

    def set_available(self, modalities: Sequence[int] | None) -> None:
        """Fix the available modalities for inference; None = detect all-zero channels."""
        if modalities is None:
            self.available = None
            return
        chosen = tuple(sorted(set(int(m) for m in modalities)))
        if not chosen or chosen[0] < 0 or chosen[-1] >= self.num_modalities:
            raise ValueError(
                f"available modalities must be a non-empty subset of 0..{self.num_modalities - 1}"
            )
        self.available = chosen

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict:
        if x.shape[1] != self.num_modalities:
            raise ValueError(
                f"expected {self.num_modalities} input channels (one per modality), got {x.shape[1]}. "
                + _CHANNEL_MISMATCH_HINT
            )
        if self.training or self.backbone.decoder.deep_supervision:
            return self._forward_all(x)
        return self._forward_available(x)

    def available_modalities(self, x: torch.Tensor) -> tuple[int, ...]:
        """The explicit availability, else channels that are not exactly zero over the whole input."""
        if self.available is not None:
            return self.available
        present = tuple(i for i in range(self.num_modalities) if bool(x[:, i].any()))
        return present or tuple(range(self.num_modalities))

    def _run_backbone(self, x: torch.Tensor, modalities: Sequence[int]) -> tuple[list, torch.Tensor | list]:
        b, k = x.shape[0], len(modalities)
        folded = x.reshape(b * k, 1, *x.shape[2:])
        index = torch.as_tensor(modalities, device=x.device, dtype=torch.long).repeat(b)
        for norm in self._norms:
            norm.modality_index = index
        skips = self.backbone.encoder(folded)
        return skips, self.backbone.decoder(skips)

    def _forward_available(self, x: torch.Tensor) -> torch.Tensor:
        modalities = self.available_modalities(x)
        if len(modalities) < self.num_modalities:
            x = x[:, list(modalities)]
        _, out = self._run_backbone(x, modalities)
        b, k = x.shape[0], len(modalities)
        per_modality = out.view(b, k, *out.shape[1:])
        if self.output_per_modality:
            return per_modality.reshape(b, k * out.shape[1], *out.shape[2:])
        mask = torch.zeros(1, self.num_modalities, device=x.device)
        mask[0, list(modalities)] = 1
        weights = self.fusion(mask)[0, list(modalities)].to(out.dtype)
        return torch.einsum("kc,bkc...->bc...", weights, per_modality)

    def _forward_all(self, x: torch.Tensor) -> dict:
        b, m = x.shape[0], self.num_modalities
        skips, out = self._run_backbone(x, range(m))
        outs = out if isinstance(out, (list, tuple)) else [out]
        logits = [o.view(b, m, *o.shape[1:]) for o in outs]
        weights = fusion_weights(self.subset_mask)
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
            "subset_mask": self.subset_mask,
            "fusion": self.fusion(self.subset_mask),
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
