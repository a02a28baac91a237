"""Fusion over the available modalities: of logits (the paper's network) and of features (ours).

Every operator here takes per-modality tensors with the modality axis second, (B, M, ...), and an
(S, M) 0/1 mask whose rows are modality subsets, and returns one fused tensor per subset,
(B, S, ...): a whole training step's subsets in one call. A (B, S, M) mask gives each sample its
own subsets (a training batch with incomplete cases, whose subsets lie inside what each case has).
A modality outside a subset contributes exactly nothing to that subset's output (a 0 weight or a
-inf score, never a zero passed through a layer), so changing its input leaves the output
bit-identical. For prediction with k available modalities, pass only their k feature maps and a
(1, k) mask of ones: the operators depend on a modality only through its features, so this equals
the M-modality call with the subset's mask.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from nnunet_holder.subsets import fusion_weights


def fuse_logits(per_modality: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted means of per-modality logits (B, M, C, *sp) -> (B, S, C, *sp).

    `weights` is (S, M) (the same weight for every class, e.g. `fusion_weights(mask)`) or (S, M, C)
    (per class, e.g. learned weights), or (B, S, M, C) per sample; each row sums to 1 over the
    subset's modalities.
    """
    weights = weights.to(per_modality.dtype)
    if weights.dim() == 2:
        return torch.einsum("sm,bm...->bs...", weights, per_modality)
    if weights.dim() == 4:
        return torch.einsum("bsmc,bmc...->bsc...", weights, per_modality)
    return torch.einsum("smc,bmc...->bsc...", weights, per_modality)


def subset_sums(weights: torch.Tensor, per_modality: torch.Tensor) -> torch.Tensor:
    """Σ_m w[s, m] x_m per subset: (S, M) or per-sample (B, S, M) weights, (B, M, ...) -> (B, S, ...)."""
    if weights.dim() == 3:
        return torch.einsum("bsm,bm...->bs...", weights, per_modality)
    return torch.einsum("sm,bm...->bs...", weights, per_modality)


class FeatureFusion(nn.Module):
    """Base of the feature-fusion operators: (B, M, F, *sp) features, (S, M) or (B, S, M) mask ->
    (B, S, F, *sp)."""

    name: ClassVar[str]

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class MaskedMean(FeatureFusion):
    """The mean of the subset's feature maps: Σ_{m∈S} f_m / |S| (no parameters)."""

    name = "mean"

    def __init__(self, channels: int, conv_op: type[nn.Module]) -> None:
        super().__init__()

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return subset_sums(fusion_weights(mask.float()).to(features), features)


class MeanVariance(FeatureFusion):
    """HeMIS: the subset's mean and variance, concatenated, projected back to F by a 1x1 convolution.

        μ_S = Σ_{m∈S} f_m / |S|,   σ²_S = Σ_{m∈S} (f_m − μ_S)² / |S|,   out = W [μ_S, σ²_S] + b

    σ² is the population variance, 0 for one modality (HeMIS sets it to 0 there too). The
    projection starts as [identity, 0], so the operator starts as the mean.
    """

    name = "mean_variance"

    def __init__(self, channels: int, conv_op: type[nn.Module]) -> None:
        super().__init__()
        self.project = conv_op(2 * channels, channels, kernel_size=1)
        with torch.no_grad():
            self.project.weight.zero_()
            self.project.bias.zero_()
            self.project.weight[:, :channels].view(channels, channels).copy_(torch.eye(channels))

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = fusion_weights(mask.float()).to(features)
        mean = subset_sums(weights, features)
        square = subset_sums(weights, features * features)
        variance = (square - mean * mean).clamp_min(0)
        b, s = mean.shape[:2]
        both = torch.cat((mean, variance), dim=2).flatten(0, 1)
        out = self.project(both)
        return out.view(b, s, *out.shape[1:])


class ModalityAttention(FeatureFusion):
    """Learned per-voxel attention over the subset's modalities.

        a_m = w·f_m (a 1x1 convolution to one score per voxel; no bias: softmax ignores a shift),
        α_{S,m} = softmax over m ∈ S of a_m,   out_S = Σ_{m∈S} α_{S,m} f_m

    The scores start at 0 (weights zeroed), i.e. at the mean. With one modality α = 1 exactly, so
    the output is that modality's features.
    """

    name = "attention"

    def __init__(self, channels: int, conv_op: type[nn.Module]) -> None:
        super().__init__()
        self.score = conv_op(channels, 1, kernel_size=1, bias=False)
        nn.init.zeros_(self.score.weight)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, m = features.shape[:2]
        scores = self.score(features.flatten(0, 1)).view(b, m, *features.shape[3:]).float()
        spatial = (1,) * (features.dim() - 3)
        present = mask.bool().view(-1 if mask.dim() == 3 else 1, mask.shape[-2], m, *spatial)
        scores = scores.unsqueeze(1).masked_fill(~present, float("-inf"))  # (B, S, M, *sp)
        alpha = torch.softmax(scores, dim=2).to(features.dtype)
        return torch.einsum("bsm...,bmf...->bsf...", alpha, features)


FEATURE_FUSIONS: dict[str, type[FeatureFusion]] = {
    op.name: op for op in (MaskedMean, MeanVariance, ModalityAttention)
}
"""The feature-fusion operators by name (the trainers' `fusion` setting)."""


def build_feature_fusion(name: str, channels: int, conv_op: type[nn.Module]) -> FeatureFusion:
    """The operator `name` for feature maps with `channels` channels."""
    if name not in FEATURE_FUSIONS:
        raise ValueError(f"unknown feature fusion {name!r}; known: {', '.join(FEATURE_FUSIONS)}")
    return FEATURE_FUSIONS[name](channels, conv_op)
