"""Hölder pseudo-divergence (Nielsen, Sun & Marchand-Maillet 2017), the paper's L_HD term.

A functional core on log-densities, `holder_divergence`, and the segmentation loss
`HolderDivergenceLoss` on logits in two forms: "voxel" (the paper's Eq. 1, a divergence between
the predicted and the label distribution at each voxel, averaged over voxels) and "volume" (the
predicted and the label map of each sample and region as unnormalised densities over the voxels).
Everything is computed in float32 in log space with autocast off, so the loss stays finite under
fp16/bf16 autocast, for saturated logits and for empty regions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_holder.losses.inputs import at_least_float32, autocast_off, hard_target

HOLDER_FORMS = ("voxel", "volume")


def conjugate_exponent(alpha: float) -> float:
    """β with 1/α + 1/β = 1, for α > 1 (the range where the pseudo-divergence is ≥ 0)."""
    alpha = float(alpha)
    if not alpha > 1.0:
        raise ValueError(
            f"the Hölder exponent alpha must be > 1 (alpha <= 1 gives no pseudo-divergence: "
            f"the conjugate beta is negative or infinite), got {alpha}"
        )
    return alpha / (alpha - 1.0)


def holder_divergence(
    log_p: torch.Tensor, log_q: torch.Tensor, alpha: float = 1.1, dim: int | Sequence[int] = -1
) -> torch.Tensor:
    """Hölder pseudo-divergence between two unnormalised densities given by their logarithms.

        D_α(p:q) = −log( Σ p q / (‖p‖_α ‖q‖_β) ),   ‖p‖_α = (Σ p^α)^(1/α),   1/α + 1/β = 1,  α > 1

    computed as logsumexp(α log p)/α + logsumexp(β log q)/β − logsumexp(log p + log q) over `dim`.
    D ≥ 0 (Hölder's inequality), D = 0 iff p^α ∝ q^β, and D is projective: D(λp : μq) = D(p : q)
    for λ, μ > 0. Zero probabilities are −inf entries of `log_p` / `log_q`: logsumexp gives them
    weight exp(−inf) = 0 in the values and in the gradients, so no eps is added. Each slice along
    `dim` needs one entry where both are finite; otherwise Σ p q = 0 and D = +inf (disjoint supports).

    Args:
        log_p: log-density, any shape.
        log_q: log-density, broadcastable to `log_p`.
        alpha: the Hölder exponent α > 1 (the paper: 1.1, so β = 11).
        dim: the axis or axes the densities live on (summed over).

    Returns:
        the broadcast shape of the inputs with `dim` removed, float32 (float64 kept).
    """
    beta = conjugate_exponent(alpha)
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    with autocast_off(log_p.device):
        log_p = at_least_float32(log_p)
        log_q = at_least_float32(log_q)
        log_inner = torch.logsumexp(log_p + log_q, dims)
        log_norm_p = torch.logsumexp(alpha * log_p, dims) / alpha
        log_norm_q = torch.logsumexp(beta * log_q, dims) / beta
        return log_norm_p + log_norm_q - log_inner


class HolderDivergenceLoss(nn.Module):
    """Hölder pseudo-divergence between predicted and label distributions, on logits.

    "voxel" form (default; the paper's Eq. 1): at each voxel x, the predicted distribution p_x and
    the label distribution q_x over the outcomes c:
        region datasets (sigmoid): per region a Bernoulli (σ(z), 1 − σ(z)) vs (y, 1 − y),
        label datasets (softmax): the categorical softmax over the C classes vs the one-hot label.
    With hard labels ‖q_x‖_β = 1 and Σ_c p_c q_c = p_y (the probability of the true outcome), so
        D_α(p_x : q_x) = −log p_y + (1/α) log Σ_c p_c^α.
    With p = softmax(z), log p_c = z_c − logsumexp(z), this is exactly
        D_α = (1/α) logsumexp_c(α (z_c − z_y)) = CE(α z, y) / α,
    the cross-entropy of the logits sharpened by α, divided by α; for a Bernoulli region with logit
    z and label y ∈ {0, 1} it is softplus(−α (2y − 1) z) / α = BCE(α z, y) / α. These closed forms
    are what is computed: log space, no log of the label ever taken, exact 0 at saturated correct
    logits. The loss is the mean over samples, regions (sigmoid) and voxels. As α → 1⁺ it tends to
    the cross-entropy −log p_y, with first-order term −(α − 1)·H(p_x).

    "volume" form: for each sample and region (sigmoid; p(x) = σ(z_x)) or foreground class c ≥ 1
    (softmax; p(x) = softmax(z_x)_c), the predicted map p and the binary label map q as
    unnormalised densities over the voxels x, D_α(p : q) with ‖q‖_β = n^(1/β) for n foreground
    voxels. Projective: the scale of p does not matter. It is undefined for an empty label map;
    such (sample, region) terms are skipped and the loss is the mean over the defined ones (0,
    still attached to the graph, when none is defined).

    Zero: the pseudo-divergence is 0 iff p^α ∝ q^β. With hard labels q^β = q, so the voxel form is
    0 exactly when the prediction equals the label (p_y = 1), and the volume form exactly when the
    predicted map is proportional to the label mask (any positive scale inside, 0 outside). Soft
    labels are not supported (values > 0.5 count as foreground): with soft q the pseudo-divergence
    is not 0 at p = q, and no label smoothing is applied here.

    Args:
        alpha: the Hölder exponent α > 1 (β = α / (α − 1)).
        form: "voxel" or "volume".
        use_sigmoid: True for region datasets (independent sigmoid channels, one-hot targets),
            False for label datasets (softmax, label-map or one-hot targets).

    Shapes (forward): logits (N, C, *spatial); target one-hot (N, C, *spatial) or, for softmax, a
    label map (N, 1, *spatial). With `class_dim=k` the class axis is k and the target may hold
    size-1 axes that broadcast against the logits (e.g. logits (N, S, C, *sp), target
    (N, 1, C, *sp)). Returns a scalar float32 tensor.
    """

    def __init__(self, alpha: float = 1.1, form: str = "voxel", use_sigmoid: bool = True) -> None:
        super().__init__()
        if form not in HOLDER_FORMS:
            raise ValueError(f"form must be one of {HOLDER_FORMS}, got {form!r}")
        self.beta = conjugate_exponent(alpha)
        self.alpha = float(alpha)
        self.form = form
        self.use_sigmoid = use_sigmoid

    def forward(self, logits: torch.Tensor, target: torch.Tensor, class_dim: int = 1) -> torch.Tensor:
        with autocast_off(logits.device):
            z = at_least_float32(logits)
            mask = hard_target(target, z.shape[class_dim], class_dim, self.use_sigmoid)
            if self.form == "voxel":
                return self._voxel(z, mask, class_dim).mean()
            return self._volume(z, mask, class_dim)

    def _voxel(self, z: torch.Tensor, mask: torch.Tensor, class_dim: int) -> torch.Tensor:
        if self.use_sigmoid:
            return F.softplus(torch.where(mask, -self.alpha, self.alpha) * z) / self.alpha
        # subtracting z_y before the logsumexp keeps the value exactly 0 at saturated correct logits
        z_true = torch.where(mask, z, 0.0).sum(class_dim, keepdim=True)
        return torch.logsumexp(self.alpha * (z - z_true), class_dim) / self.alpha

    def _volume(self, z: torch.Tensor, mask: torch.Tensor, class_dim: int) -> torch.Tensor:
        if self.use_sigmoid:
            log_p = F.logsigmoid(z)
        else:
            num_fg = z.shape[class_dim] - 1
            log_p = F.log_softmax(z, class_dim).narrow(class_dim, 1, num_fg)
            mask = mask.narrow(class_dim, 1, num_fg)
        spatial = tuple(range(class_dim + 1, z.ndim))
        defined = mask.any(dim=spatial, keepdim=True)
        # An empty label map would make every log q −inf and its logsumexp's gradient NaN, which a
        # later torch.where cannot undo; give it the all-ones map instead and discard its term.
        log_q = torch.where(mask | ~defined, 0.0, float("-inf"))
        d = holder_divergence(log_p, log_q, self.alpha, spatial)
        defined = defined.reshape(defined.shape[: class_dim + 1]).expand_as(d)
        return torch.where(defined, d, 0.0).sum() / defined.sum().clamp_min(1)
