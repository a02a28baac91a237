"""The feature-fusion modality-parallel network: one encoder pass per modality, one fused decoder.

The shared encoder of `ModalityNetwork` (per-modality norms) runs on the available modalities
folded into the batch. At every skip level and at the bottleneck a feature-fusion operator
(`architectures.fusion`: masked mean, HeMIS mean + variance, or per-voxel modality attention)
combines the k feature maps over the available set, and one nnU-Net decoder (the plans' own
`UNetDecoder`, with the plans' plain norms: it sees fused features, not one modality) decodes
them, with deep supervision. So the decoder can use one modality to interpret another, as HeMIS,
U-HVED, RFNet and mmFormer do, and k available modalities cost k encoder passes and one decoder
pass. A missing modality contributes nothing: it never runs, and in training its fusion weight
is exactly 0. MI regressors read each subset's fused features at the deepest stages (d_S) against
the full set's (d_f).
"""

from __future__ import annotations

import torch
from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder
from nnunet_holder.architectures.fusion import build_feature_fusion
from nnunet_holder.architectures.modality_net import ModalityNetwork
from torch import nn


class FeatureFusionNet(ModalityNetwork):
    """Shared encoder with per-modality norms, feature fusion at every stage, one decoder.

    Args: those of `ModalityNetwork`, and
        fusion: the feature-fusion operator, a key of `architectures.fusion.FEATURE_FUSIONS`.
    """

    def __init__(self, *args, fusion: str = "mean", deep_supervision: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.encoder = self.make_backbone(deep_supervision).encoder
        # the plans' decoder (as PlainConvUNet / ResidualEncoderUNet build it) with the plans' own norm
        self.decoder = UNetDecoder(
            self.encoder, self.num_classes, self.scaled_kwargs["n_conv_per_stage_decoder"], deep_supervision,
            nonlin_first=self.scaled_kwargs.get("nonlin_first", False),
            norm_op=self.base_norm, norm_op_kwargs=self.base_norm_kwargs,
        )
        self.decoder.apply(self.backbone_class.initialize)
        conv_op = self.encoder.conv_op
        self.fusion_name = fusion
        self.fusions = nn.ModuleList(
            build_feature_fusion(fusion, c, conv_op) for c in self.encoder.output_channels
        )
        self.mi_regressors = self.make_mi_regressors(self.encoder)

    def encode(self, x: torch.Tensor, modalities: torch.Tensor) -> list[torch.Tensor]:
        """Skips of the modalities (k,) of x (B, k, ...): a list over stages of (B, k, F, *sp)."""
        b, k = x.shape[0], x.shape[1]
        with self.folded(modalities.to(x.device), b):
            skips = self.encoder(x.reshape(b * k, 1, *x.shape[2:]))
        return [f.view(b, k, *f.shape[1:]) for f in skips]

    def fuse(self, skips: list[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        """Per-stage fusion of (B, k, F, *sp) skips over the (S, k) mask -> list of (B, S, F, *sp)."""
        return [op(f, mask) for op, f in zip(self.fusions, skips, strict=True)]

    def decode(self, fused: list[torch.Tensor]) -> list[torch.Tensor]:
        """Decoder outputs of fused skips (B, S, F, *sp): a list over scales of (B, S, C, *sp)."""
        b, s = fused[0].shape[:2]
        out = self.decoder([f.flatten(0, 1) for f in fused])
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [o.view(b, s, *o.shape[1:]) for o in outs]

    def predict(self, x: torch.Tensor, available: torch.Tensor | None = None) -> torch.Tensor:
        """Fused logits (B, C, *spatial) over `available`: k encoder passes, one decoder pass."""
        available = self.available_or_present(x, available)
        skips = self.encode(x.index_select(1, available), available)
        mask = torch.ones(1, available.numel(), device=x.device)
        return self.decode(self.fuse(skips, mask))[0][:, 0]

    def subset_logits(self, x: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
        """Fused logits (B, S, C, *spatial): every encoder once, the S subsets decoded in one batch."""
        self.check_channels(x)
        mask = self.check_subsets(subsets, x.device)
        skips = self.encode(x, torch.arange(self.num_modalities, device=x.device))
        return self.decode(self.fuse(skips, mask))[0]

    def training_output(self, x: torch.Tensor, subsets: torch.Tensor) -> dict:
        self.check_channels(x)
        subsets = self.check_subsets(subsets, x.device)
        skips = self.encode(x, torch.arange(self.num_modalities, device=x.device))
        fused = self.fuse(skips, subsets)
        # the MI teacher: every modality, or each sample's available set (the union of its subsets)
        full = torch.ones(1, self.num_modalities, device=x.device) if subsets.dim() == 2 else subsets.amax(
            dim=1, keepdim=True
        )
        mi_pred, mi_target, mi_var = [], [], []
        stages = range(len(skips) - len(self.mi_regressors), len(skips))
        for regressor, j in zip(self.mi_regressors, stages, strict=True):
            b, s = fused[j].shape[:2]
            mu = regressor(fused[j].flatten(0, 1))
            mi_pred.append(mu.view(b, s, *mu.shape[1:]))
            mi_target.append(self.fusions[j](skips[j], full)[:, 0])
            mi_var.append(regressor.variance())
        return {"logits": self.decode(fused), "subset_mask": subsets, "mi_pred": mi_pred,
                "mi_target": mi_target, "mi_var": mi_var}
