"""Variational mutual-information term (variational information distillation, Ahn et al. 2019).

The paper's L_MI (Eq. 4–5): the features d_S of a modality subset should predict the full-modality
features d_f under a Gaussian q(d_f | d_S) = N(μ(d_S), diag σ²) with a learned mean regressor μ
and a learned per-channel variance σ_c². Minimising its negative log-likelihood maximises a
variational lower bound on MI(d_f; d_S). `MIRegressor` holds the learnable parts and belongs inside
the network (so the optimizer, checkpoints and DDP see it); `VariationalMILoss` is the likelihood
term; `mi_stage_weights` gives the per-stage weights γ_k when several stages are distilled.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_holder.losses.inputs import autocast_off


class MIRegressor(nn.Module):
    """Mean regressor μ and per-channel variance σ² of the variational distribution q(d_f | d_S).

        μ(x) = conv₃(ReLU(conv₂(ReLU(conv₁(x))))),  three 1×1(×1) convolutions C → C → C,
        σ_c² = softplus(ρ_c) + min_variance,        ρ initialised so that σ_c² = init_variance.

    Lives inside the network (trained by the network's optimizer, saved in its checkpoints,
    synchronised by DDP); the public code of the paper kept it outside the optimizer.

    Args:
        channels: C, the feature channels of the distilled stage.
        conv_op: nn.Conv3d or nn.Conv2d (nnU-Net's plans decide).
        init_variance: σ² at initialisation (5, as in the VID reference).
        min_variance: lower bound of σ², keeps log σ² and 1/σ² finite.

    Shapes: forward (N, C, *spatial) → (N, C, *spatial); variance() → (C,) float32.
    """

    def __init__(
        self,
        channels: int,
        conv_op: type[nn.Module] = nn.Conv3d,
        init_variance: float = 5.0,
        min_variance: float = 1e-5,
    ) -> None:
        super().__init__()
        if not init_variance > min_variance:
            raise ValueError(f"init_variance ({init_variance}) must exceed min_variance ({min_variance})")
        self.mean = nn.Sequential(
            conv_op(channels, channels, kernel_size=1),
            nn.ReLU(),
            conv_op(channels, channels, kernel_size=1),
            nn.ReLU(),
            conv_op(channels, channels, kernel_size=1),
        )
        self.min_variance = float(min_variance)
        # softplus⁻¹(v) = log(eˣ − 1), in float64 so that σ² starts at init_variance to float32 precision
        rho = math.log(math.expm1(init_variance - min_variance))
        self.rho = nn.Parameter(torch.full((channels,), rho))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean(x)

    def variance(self) -> torch.Tensor:
        """σ_c² > 0 per channel, (C,) float32."""
        with autocast_off(self.rho.device):
            return F.softplus(self.rho.float()) + self.min_variance


class VariationalMILoss(nn.Module):
    """Gaussian negative log-likelihood of the full-modality features given a subset's features.

        L = mean over (b, s, c, voxels) of  ½ log σ_c² + (d_f − μ_s)² / (2 σ_c²)

    which is −log N(d_f; μ_s, σ_c²) − ½ log 2π. The paper's Eq. 5 sums over channels and voxels;
    the mean keeps the weight λ1 independent of the feature-map size. Computed in float32 with
    autocast off. The teacher d_f is detached by default, so the term moves the subset features
    towards the full-modality ones and not the reverse (the paper's code did not detach it).

    Args:
        detach_teacher: stop gradients into the target d_f.

    Shapes: mu (B, S, F, *spatial) the regressor outputs μ(d_S) for S subsets; target (B, F,
    *spatial) the full-modality features d_f; var (F,) σ². forward → scalar; per_subset → (S,).
    """

    def __init__(self, detach_teacher: bool = True) -> None:
        super().__init__()
        self.detach_teacher = detach_teacher

    def forward(self, mu: torch.Tensor, target: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        return self.per_subset(mu, target, var).mean()

    def per_subset(self, mu: torch.Tensor, target: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """The loss of each subset separately, (S,); their mean is `forward`."""
        if mu.ndim != target.ndim + 1 or mu.shape[2:] != target.shape[1:] or mu.shape[0] != target.shape[0]:
            raise ValueError(
                f"mu must be (B, S, F, *spatial) and target (B, F, *spatial), got {tuple(mu.shape)} "
                f"and {tuple(target.shape)}"
            )
        if var.shape != (mu.shape[2],):
            raise ValueError(f"var must be ({mu.shape[2]},), got {tuple(var.shape)}")
        with autocast_off(mu.device):
            teacher = target.detach() if self.detach_teacher else target
            var = var.float().view(1, 1, -1, *[1] * (mu.ndim - 3))
            nll = 0.5 * var.log() + (teacher.float().unsqueeze(1) - mu.float()) ** 2 / (2.0 * var)
            return nll.mean(dim=[d for d in range(mu.ndim) if d != 1])


def mi_stage_weights(num_stages: int) -> list[float]:
    """γ_k = γ_0 · k for stages k = 1..K ordered shallow → deep, with γ_0 = 2 / (K (K + 1)) so Σ γ_k = 1.

    Deeper stages weigh more (the paper's Sec. on γ_k); K = 1 (the bottleneck alone) gives [1.0].
    """
    if num_stages < 1:
        raise ValueError(f"num_stages must be >= 1, got {num_stages}")
    gamma0 = 2.0 / (num_stages * (num_stages + 1))
    return [gamma0 * k for k in range(1, num_stages + 1)]
