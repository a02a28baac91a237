"""The paper's modality-parallel network: one shared nnU-Net applied to every MRI modality alone.

Each available modality runs through the whole backbone (the shared encoder and decoder of
`ModalityNetwork`, per-modality norms everywhere); the outputs are fused by averaging logits over
the available modalities (the paper's Dynamic Combination), either plainly or, with
`learned_fusion`, weighted per modality and class by learned weights (one of the paper's
"flexible fusion operators"). The fusion is linear in the logits, so aggregating tiles and
mirrors before or after it gives the same result. MI regressors read the mean of the subset's
encoder features at the deepest stages (the paper's d_S) against the full set's (d_f).
"""

from __future__ import annotations

import torch
from nnunet_holder.architectures.fusion import fuse_logits, subset_sums
from nnunet_holder.architectures.modality_net import ModalityNetwork
from torch import nn

from nnunet_holder.subsets import fusion_weights


class ModalityParallelNet(ModalityNetwork):
    """Shared backbone over M modalities with per-modality norms, logit fusion and MI regressors.

    Args: those of `ModalityNetwork`, and
        learned_fusion: fuse with learned per-(modality, class) weights instead of the plain mean.
    """

    def __init__(self, *args, learned_fusion: bool = False, deep_supervision: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backbone = self.make_backbone(deep_supervision)
        self.mi_regressors = self.make_mi_regressors(self.backbone.encoder)
        # log-weights β (M, C); zeros give the plain mean, which is where learning starts
        self.fusion_logits = (
            nn.Parameter(torch.zeros(self.num_modalities, self.num_classes)) if learned_fusion else None
        )

    @property
    def decoder(self) -> nn.Module:
        """The backbone's decoder; nnU-Net switches deep supervision through `network.decoder`."""
        return self.backbone.decoder

    def fusion(self, mask: torch.Tensor) -> torch.Tensor:
        """(S, M, C) float32 weights fusing the per-modality logits of the subsets in the (S, M) mask
        ((B, S, M, C) for a per-sample (B, S, M) mask)."""
        mask = mask.float()
        if self.fusion_logits is None:
            return fusion_weights(mask).unsqueeze(-1).expand(*mask.shape, self.num_classes)
        return fusion_weights(mask, self.fusion_logits.float())

    def _run_backbone(self, x: torch.Tensor, modalities: torch.Tensor) -> tuple[list, torch.Tensor | list]:
        """Encoder skips and decoder output of the modalities (k,) of x (B, k, ...) folded into the batch."""
        b, k = x.shape[0], x.shape[1]
        with self.folded(modalities.to(x.device), b):
            skips = self.backbone.encoder(x.reshape(b * k, 1, *x.shape[2:]))
            return skips, self.backbone.decoder(skips)

    def per_modality_logits(self, x: torch.Tensor, available: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, k, C, *spatial) of each available modality alone (all M by default), unfused."""
        self.check_channels(x)
        if available is None:
            available = torch.arange(self.num_modalities, device=x.device)
        _, out = self._run_backbone(x.index_select(1, available.to(x.device)), available)
        out = out[0] if isinstance(out, (list, tuple)) else out  # highest resolution
        return out.view(x.shape[0], -1, *out.shape[1:])

    def predict(self, x: torch.Tensor, available: torch.Tensor | None = None) -> torch.Tensor:
        """Fused logits (B, C, *spatial) over `available`; only those run, so the cost grows with k."""
        available = self.available_or_present(x, available)
        per_modality = self.per_modality_logits(x, available)
        mask = torch.zeros(1, self.num_modalities, device=x.device).index_fill_(1, available, 1.0)
        weights = self.fusion(mask)[:, available]
        return fuse_logits(per_modality, weights)[:, 0]

    def subset_logits(self, x: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
        """Fused logits (B, S, C, *spatial) of every subset from one pass of every modality."""
        mask = self.check_subsets(subsets, x.device)
        return fuse_logits(self.per_modality_logits(x), self.fusion(mask))

    def training_output(self, x: torch.Tensor, subsets: torch.Tensor) -> dict:
        self.check_channels(x)
        subsets = self.check_subsets(subsets, x.device)
        b, m = x.shape[0], self.num_modalities
        skips, out = self._run_backbone(x, torch.arange(m, device=x.device))
        outs = out if isinstance(out, (list, tuple)) else [out]
        fusion = self.fusion(subsets)
        logits = [fuse_logits(o.view(b, m, *o.shape[1:]), fusion) for o in outs]
        weights = fusion_weights(subsets)
        s = weights.shape[-2]
        # the teacher d_f: the mean over every modality, or over each sample's available set
        teacher = None if subsets.dim() == 2 else fusion_weights(subsets.amax(dim=1, keepdim=True))
        mi_pred, mi_target, mi_var = [], [], []
        for regressor, feat in zip(self.mi_regressors, skips[-len(self.mi_regressors) :], strict=True):
            per_modality = feat.view(b, m, *feat.shape[1:])
            subset_feats = subset_sums(weights.to(feat.dtype), per_modality)
            mu = regressor(subset_feats.reshape(b * s, *feat.shape[1:]))
            mi_pred.append(mu.view(b, s, *mu.shape[1:]))
            mi_target.append(
                per_modality.mean(dim=1) if teacher is None
                else subset_sums(teacher.to(feat.dtype), per_modality)[:, 0]
            )
            mi_var.append(regressor.variance())
        return {"logits": logits, "subset_mask": subsets, "mi_pred": mi_pred, "mi_target": mi_target,
                "mi_var": mi_var}
