"""The proper Hölder divergence (Nielsen, Sun & Marchand-Maillet 2017) between soft predictions.

A functional core on log-densities, `proper_holder_divergence`, and the loss
`SoftHolderDivergenceLoss`, which compares at every voxel the distribution a student's logits
predict with the one a teacher's logits predict: the knowledge-distillation reading of the paper's
Hölder term. It is a different function from the pseudo-divergence of `holder` (the paper's Eq. 2,
which the label term uses): that one is 0 iff p^α ∝ q^β, which for hard labels means "prediction =
label" but for a soft target q is not 0 at p = q; this one is 0 iff p ∝ q, so a student that
predicts what the teacher predicts costs nothing. Computed in float32 in log space with autocast
off, like every loss of this package.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_holder.losses.holder import conjugate_exponent, holder_divergence
from nnunet_holder.losses.inputs import at_least_float32, autocast_off

REDUCTIONS = ("mean", "sum", "none")


def proper_holder_divergence(
    log_p: torch.Tensor,
    log_q: torch.Tensor,
    alpha: float = 1.1,
    gamma: float = 1.0,
    dim: int | Sequence[int] = -1,
) -> torch.Tensor:
    """Hölder divergence D_{α,γ} between two unnormalised densities given by their logarithms.

        D_{α,γ}(p:q) = −log( Σ p^{γ/α} q^{γ/β} / ((Σ p^γ)^{1/α} (Σ q^γ)^{1/β}) ),  1/α + 1/β = 1,

    which is the Hölder pseudo-divergence (`holder_divergence`) of p^{γ/α} and q^{γ/β}, and is
    computed as that, in log space. D ≥ 0 (Hölder's inequality), D = 0 iff p^γ ∝ q^γ, i.e. iff
    p ∝ q (a proper divergence; for normalised distributions iff p = q), and D is projective:
    D(λp : μq) = D(p : q) for λ, μ > 0. For normalised p, q and γ = 1 the denominator is 1 and
    D = −log Σ p^{1/α} q^{1/β}, the skew Bhattacharyya distance, (1/β)·Rényi_{1/α}(p ‖ q).
    α = β = γ = 2 gives the Cauchy–Schwarz divergence. Near p = q,
    D ≈ γ²/(2αβ) · Var_π(log p − log q) with π ∝ q^γ, against KL(p ‖ q) ≈ ½ Var_q(log p − log q):
    for γ = 1 and the paper's α = 1.1 (αβ = 12.1), D is about a twelfth of the KL divergence.
    Zero probabilities are −inf entries, as in `holder_divergence`.

    Args:
        log_p: log-density, any shape.
        log_q: log-density, broadcastable to `log_p`.
        alpha: the Hölder exponent α > 1 (β = α / (α − 1)).
        gamma: the power γ > 0 the densities are raised to.
        dim: the axis or axes the densities live on (summed over).

    Returns:
        the broadcast shape of the inputs with `dim` removed, float32 (float64 kept).
    """
    gamma = float(gamma)
    if not gamma > 0:
        raise ValueError(f"the Hölder divergence's power gamma must be > 0, got {gamma}")
    beta = conjugate_exponent(alpha)
    with autocast_off(log_p.device):
        # scaled in float32: a bf16 log-density times γ/β would round before the logsumexp
        log_p = at_least_float32(log_p) * (gamma / alpha)
        log_q = at_least_float32(log_q) * (gamma / beta)
        return holder_divergence(log_p, log_q, alpha, dim)


class SoftHolderDivergenceLoss(nn.Module):
    """Proper Hölder divergence D_{α,γ}(p ‖ q) between a student's and a teacher's prediction, per voxel.

    At each voxel x, p_x is the distribution the student's logits predict and q_x the one the
    teacher's predict, both at temperature T:
        region datasets (sigmoid): per region a Bernoulli (σ(z/T), 1 − σ(z/T)),
        label datasets (softmax): the categorical softmax(z/T) over the C classes,
    and the loss is
        T² · mean over samples, voxels (and regions) of D_{α,γ}(p_x : q_x)
    with D_{α,γ} from `proper_holder_divergence` over the outcomes of each distribution. The
    teacher is detached by default, so the loss moves the student towards the teacher and never
    the reverse. The temperature softens both distributions (T > 1) so the teacher's ranking of
    the unlikely outcomes carries weight; as in Hinton et al.'s distillation the result is scaled
    by T², because D, and its gradient with respect to the logits, shrinks like 1/T² (D is
    quadratic in the log-probability differences near p = q, and those scale as 1/T), so the
    term's weight means the same at every temperature. Everything is computed from logsigmoid /
    log_softmax in float32 with autocast off: finite under fp16/bf16 autocast and for saturated
    logits, and 0 up to float32 rounding (which can leave a voxel's value a hair below 0) where the
    student's and the teacher's logits give the same distribution (softmax logits that differ by a
    constant per voxel included).

    Args:
        alpha: the Hölder exponent α > 1.
        gamma: the power γ > 0 (1: the skew Bhattacharyya distance for these normalised distributions).
        temperature: T > 0; student and teacher logits are divided by T, the loss multiplied by T².
        use_sigmoid: True for region datasets (one Bernoulli per region channel), False for label
            datasets (one categorical over the class channels).
        detach_teacher: stop gradients into the teacher's logits.
        reduction: "mean" (default), "sum", or "none".

    Shapes (forward): student logits (N, C, *spatial); teacher logits broadcastable to them (e.g.
    student (N, S, C, *sp) with `class_dim=2` against teacher (N, 1, C, *sp)). Returns a scalar
    float32 tensor, or with reduction "none" one value per Bernoulli (sigmoid: the broadcast
    shape) or per categorical (softmax: the broadcast shape without `class_dim`).
    """

    def __init__(
        self,
        alpha: float = 1.1,
        gamma: float = 1.0,
        temperature: float = 1.0,
        use_sigmoid: bool = True,
        detach_teacher: bool = True,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.beta = conjugate_exponent(alpha)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.temperature = float(temperature)
        self.use_sigmoid = use_sigmoid
        self.detach_teacher = detach_teacher
        self.reduction = reduction

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, class_dim: int = 1
    ) -> torch.Tensor:
        teacher = teacher_logits.detach() if self.detach_teacher else teacher_logits
        with autocast_off(student_logits.device):
            z_s = at_least_float32(student_logits) / self.temperature
            z_t = at_least_float32(teacher) / self.temperature
            if self.use_sigmoid:
                # the two outcomes of each region's Bernoulli on a new last axis
                log_p = torch.stack([F.logsigmoid(z_s), F.logsigmoid(-z_s)], -1)
                log_q = torch.stack([F.logsigmoid(z_t), F.logsigmoid(-z_t)], -1)
                outcomes = -1
            else:
                log_p, log_q = F.log_softmax(z_s, class_dim), F.log_softmax(z_t, class_dim)
                outcomes = class_dim
            d = proper_holder_divergence(log_p, log_q, self.alpha, self.gamma, outcomes)
            d = d * self.temperature**2
        if self.reduction == "mean":
            return d.mean()
        return d.sum() if self.reduction == "sum" else d
