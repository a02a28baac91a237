"""The divergence family of the paper's Table IV, and the factory the trainers pick them from.

Each loss compares, at every voxel, the predicted distribution with the label distribution (a
Bernoulli per region for sigmoid / region datasets, a categorical over the classes for softmax /
label datasets) and averages over voxels (and regions), with the calling convention of
`HolderDivergenceLoss`: forward(logits, target, class_dim=1). All are computed in float32 from
logsigmoid / log_softmax with autocast off, so they stay finite under fp16/bf16 autocast and at
±100 logits. `build_divergence` maps the names used by the trainer variants to instances.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_holder.losses.holder import HolderDivergenceLoss
from nnunet_holder.losses.inputs import at_least_float32, autocast_off, hard_target

DIVERGENCES = ("holder", "holder_volume", "kl", "js", "tv", "hellinger", "neyman_chi2", "mse", "bce")

NEYMAN_LOG_P_FLOOR = -20.0


class VoxelDivergenceLoss(nn.Module):
    """Base class: a divergence between predicted and label distribution at each voxel, averaged.

    Subclasses implement `_divergence(z, mask, class_dim)`, returning per-element values whose mean
    is the loss. Shapes (forward): logits (N, C, *spatial); target one-hot (N, C, *spatial) or, for
    softmax, a label map (N, 1, *spatial); with `class_dim=k` the class axis is k and size-1 target
    axes broadcast. Targets are hard (values > 0.5 count as set). Returns a scalar float32 tensor.

    Args:
        use_sigmoid: True for region datasets (a Bernoulli per region and voxel), False for label
            datasets (a categorical over the C classes per voxel).
    """

    def __init__(self, use_sigmoid: bool = True) -> None:
        super().__init__()
        self.use_sigmoid = use_sigmoid

    def forward(self, logits: torch.Tensor, target: torch.Tensor, class_dim: int = 1) -> torch.Tensor:
        with autocast_off(logits.device):
            z = at_least_float32(logits)
            mask = hard_target(target, z.shape[class_dim], class_dim, self.use_sigmoid)
            return self._divergence(z, mask, class_dim).mean()

    def _divergence(self, z: torch.Tensor, mask: torch.Tensor, class_dim: int) -> torch.Tensor:
        raise NotImplementedError


class _OutcomeSumDivergence(VoxelDivergenceLoss):
    """A divergence that is a sum over outcomes of a term f(log p_c, q_c): both Bernoulli outcomes
    for sigmoid (mean over regions and voxels), the C classes for softmax (mean over voxels)."""

    def _divergence(self, z: torch.Tensor, mask: torch.Tensor, class_dim: int) -> torch.Tensor:
        q = mask.to(z.dtype)
        if self.use_sigmoid:
            return self._term(F.logsigmoid(z), q) + self._term(F.logsigmoid(-z), 1.0 - q)
        return self._term(F.log_softmax(z, class_dim), q).sum(class_dim)

    def _term(self, log_p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class KLDivergenceLoss(_OutcomeSumDivergence):
    """KL(label ‖ prediction) = Σ_c q_c log(q_c / p_c), with 0 log 0 = 0.

    For hard labels this is the cross-entropy −log p_y (binary cross-entropy per region for
    sigmoid), so on nnU-Net's targets it coincides with "bce"; the two differ by the label entropy
    only for soft labels. 0 iff p = q.
    """

    def _term(self, log_p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return torch.xlogy(q, q) - q * log_p


class JensenShannonLoss(_OutcomeSumDivergence):
    """Jensen–Shannon divergence ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q) / 2; in [0, log 2], 0 iff p = q.

    log m = logaddexp(log p, log q) − log 2 stays finite where q = 0 because log p is finite.
    """

    def _term(self, log_p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        log_m = torch.logaddexp(log_p, torch.log(q)) - math.log(2.0)
        return 0.5 * (log_p.exp() * (log_p - log_m) + torch.xlogy(q, q) - q * log_m)


class TotalVariationLoss(_OutcomeSumDivergence):
    """Total variation ½ Σ_c |p_c − q_c|; in [0, 1], 0 iff p = q."""

    def _term(self, log_p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return 0.5 * (log_p.exp() - q).abs()


class HellingerLoss(_OutcomeSumDivergence):
    """Squared Hellinger distance ½ Σ_c (√p_c − √q_c)², with √p = exp(½ log p); in [0, 1], 0 iff p = q."""

    def _term(self, log_p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((0.5 * log_p).exp() - q.sqrt()) ** 2


class NeymanChi2Loss(_OutcomeSumDivergence):
    """Neyman χ² = Σ_c (q_c − p_c)² / p_c, p the prediction; 0 iff p = q.

    The denominator is max(p_c, e^−20) (log p clamped from below at NEYMAN_LOG_P_FLOOR): without
    it one confidently wrong voxel (p_y ≈ e^−100 at ±100 logits) gives 1e43 and overflows float32.
    With it a voxel contributes at most about e^20 ≈ 4.9e8, and the value is the exact χ² whenever
    every p_c ≥ e^−20.
    """

    def _term(self, log_p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return (q - log_p.exp()) ** 2 * torch.exp(-log_p.clamp_min(NEYMAN_LOG_P_FLOOR))


class MSELoss(VoxelDivergenceLoss):
    """Mean squared error mean (p − q)² over voxels and channels: p = σ(z) per region (sigmoid) or the
    softmax probabilities per class (softmax), q the one-hot target; 0 iff p = q."""

    def _divergence(self, z: torch.Tensor, mask: torch.Tensor, class_dim: int) -> torch.Tensor:
        p = torch.sigmoid(z) if self.use_sigmoid else torch.softmax(z, class_dim)
        return (p - mask.to(z.dtype)) ** 2


class BCELoss(VoxelDivergenceLoss):
    """Binary cross-entropy with logits per region (sigmoid) / cross-entropy over the classes
    (softmax), torch's own implementations, mean over voxels (and regions). Its minimum for hard
    labels is 0, reached only in the limit of saturated logits."""

    def _divergence(self, z: torch.Tensor, mask: torch.Tensor, class_dim: int) -> torch.Tensor:
        q = mask.to(z.dtype).expand_as(z)
        if self.use_sigmoid:
            return F.binary_cross_entropy_with_logits(z, q, reduction="none")
        return F.cross_entropy(z.movedim(class_dim, 1), q.movedim(class_dim, 1), reduction="none")


_FAMILY: dict[str, type[VoxelDivergenceLoss]] = {
    "kl": KLDivergenceLoss,
    "js": JensenShannonLoss,
    "tv": TotalVariationLoss,
    "hellinger": HellingerLoss,
    "neyman_chi2": NeymanChi2Loss,
    "mse": MSELoss,
    "bce": BCELoss,
}


def build_divergence(name: str, alpha: float = 1.1, use_sigmoid: bool = True) -> nn.Module:
    """The divergence loss called `name` (one of DIVERGENCES); `alpha` is used by the Hölder forms only.

    "holder" is the voxel form of `HolderDivergenceLoss` (the paper's Eq. 1), "holder_volume" its
    volume form; the others are the Table IV alternatives of this module.
    """
    if name == "holder":
        return HolderDivergenceLoss(alpha=alpha, form="voxel", use_sigmoid=use_sigmoid)
    if name == "holder_volume":
        return HolderDivergenceLoss(alpha=alpha, form="volume", use_sigmoid=use_sigmoid)
    if name not in _FAMILY:
        raise ValueError(f"unknown divergence {name!r}; choose one of {DIVERGENCES}")
    return _FAMILY[name](use_sigmoid=use_sigmoid)
