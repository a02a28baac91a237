"""The training loss of the method: Dice + λ2·divergence over every modality subset and deep-
supervision scale, plus λ1·variational MI (and, for the distillation trainers, λ_kd·the proper
Hölder divergence from each subset's prediction to the full set's), on the training output of a
modality-parallel network.

The network fuses (its `training_output` gives one logit map per subset of the step and scale,
whether it fuses logits or features), so the loss only needs the fused maps; the Dice and
divergence terms of all subsets are evaluated in one call each (the subset axis is folded into
the channel axis for nnU-Net's Dice, and broadcast for the divergence).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from torch import nn

from nnunet_holder.losses.divergences import build_divergence
from nnunet_holder.losses.inputs import autocast_off, hard_target
from nnunet_holder.losses.mi import VariationalMILoss, mi_stage_weights
from nnunet_holder.losses.soft_holder import SoftHolderDivergenceLoss


class HolderMILoss(nn.Module):
    """Dice + Hölder divergence at every deep-supervision scale + variational MI, over modality subsets.

        Ŷ_S^k: the network's fused logits of subset S at scale k (the paper's network: the mean
               Σ_{i∈S} h_i^k / |S| of the per-modality logits; the feature-fusion network:
               one decoder pass over the fused features)
        L_S   = Σ_k w_k [ Dice(Ŷ_S^k, Y^k) + λ2 · D(Ŷ_S^k, Y^k) + λ_kd · KD(Ŷ_S^k ‖ sg(Ŷ_F^k)) ]
                + λ1 · Σ_j γ_j MI_S^j
        L     = (Σ_{S ≠ F} L_S + ω · L_F) / Z

    over the n subsets of the step, F the full set (the last subset of the step, as the trainers
    order them), ω = `full_set_weight` and Z = n − 1 + ω (`subset_reduction` "mean"; ω = 1 gives the
    paper's mean over subsets) or Z = 1 ("sum": each subset's term counts as a whole nnU-Net loss,
    meant for a few subsets per step).

    Dice is nnU-Net's `MemoryEfficientSoftDiceLoss` (its value is −mean soft Dice, so L can be
    negative, as nnU-Net's own loss): on sigmoid probabilities with every region for region
    datasets, on softmax probabilities without the background class for label datasets, exactly
    nnU-Net's settings. D is `build_divergence(divergence)`; MI_S^j is `VariationalMILoss` at MI
    stage j (shallow → deep) with γ_j from `mi_stage_weights`. Scales whose weight w_k is 0 are
    skipped, as nnU-Net's DeepSupervisionWrapper does. KD is the knowledge-distillation reading of
    the Hölder term (λ_kd > 0 only): `SoftHolderDivergenceLoss`, the proper Hölder divergence
    D_{α,γ} at temperature T between each subset's prediction and the full set's prediction of
    the same forward pass, the teacher detached (sg); the full set's own term is 0 and is not
    computed. It sits at every deep-supervision scale with the weights w_k of the label terms, so
    λ_kd weighs it against Dice and D alike at every scale. The Dice, divergence, KD and MI are
    computed in float32 with autocast off.

    Args:
        use_sigmoid: True for region datasets (one-hot targets), False for label datasets.
        ds_weights: nnU-Net's deep-supervision weights, one per scale (highest resolution first);
            None for a single scale.
        divergence: a `build_divergence` name, or None to drop the divergence term.
        alpha: the Hölder exponent (Hölder divergences only).
        lambda_hd: λ2, the weight of the divergence term.
        lambda_mi: λ1, the weight of the MI term; 0 disables it.
        detach_teacher: detach the full-modality features d_f in the MI term.
        batch_dice, ddp, smooth: passed to nnU-Net's Dice (ddp: gather the batch-Dice sums over
            ranks; every rank must then see the same number of subsets).
        full_set_weight: ω, the weight of the full set's term relative to each other subset's.
        subset_reduction: "mean" (divide by the sum of the subset weights) or "sum".
        log_dice_per_subset: also report each subset's Dice loss at the first weighted scale
            (one extra no-grad pass over the probabilities, this rank's values only).
        lambda_kd: λ_kd, the weight of the distillation term; 0 (the default, the paper's Eq. 7)
            leaves it out.
        kd_temperature: T of the distillation term (`SoftHolderDivergenceLoss`).
        kd_gamma: γ of the distillation term's Hölder divergence; its α is `alpha`.

    Inputs of forward:
        output: the network's training dict. Consumed keys: "logits" (list over scales of the
            fused logits (B, S, C, *spatial_k), one map per subset of the step) and, when
            lambda_mi > 0, "mi_pred" (list over MI stages of (B, S, F_j, *sp_j)), "mi_target" (list of
            (B, F_j, *sp_j)), "mi_var" (list of (F_j,)); with lambda_kd > 0, "subset_mask" (S, M) or (B, S, M)
            when present, to check that the last subset, the teacher, is the full set.
        target: list over scales of nnU-Net targets: one-hot (B, C, *spatial_k) for region
            datasets, label maps (B, 1, *spatial_k) for label datasets (a bare tensor for one scale).

    forward returns the scalar loss and stores the logged parts in `last_parts`; `compute` returns
    both. Parts: "dice" (Σ_k w_k · Dice, mean over subsets), "hd" (Σ_k w_k · D, before λ2), "mi"
    (Σ_j γ_j · MI, before λ1), all floats, "kd" (Σ_k w_k · KD, the mean over the step's subsets
    with the full set's 0, before λ_kd) when lambda_kd > 0, and "dice_per_subset" (list of S
    floats) when `log_dice_per_subset`.
    """

    def __init__(
        self,
        use_sigmoid: bool,
        ds_weights: Sequence[float] | None = None,
        divergence: str | None = "holder",
        alpha: float = 1.1,
        lambda_hd: float = 1.0,
        lambda_mi: float = 1.0,
        detach_teacher: bool = True,
        batch_dice: bool = False,
        ddp: bool = False,
        smooth: float = 1e-5,
        full_set_weight: float = 1.0,
        subset_reduction: str = "mean",
        log_dice_per_subset: bool = False,
        lambda_kd: float = 0.0,
        kd_temperature: float = 1.0,
        kd_gamma: float = 1.0,
    ) -> None:
        super().__init__()
        weights = (1.0,) if ds_weights is None else tuple(float(w) for w in ds_weights)
        if not weights or any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise ValueError(f"ds_weights must be non-negative with at least one > 0, got {ds_weights}")
        if lambda_hd < 0 or lambda_mi < 0 or lambda_kd < 0:
            raise ValueError(
                f"lambda_hd, lambda_mi and lambda_kd must be >= 0, got {lambda_hd}, {lambda_mi}, {lambda_kd}"
            )
        if full_set_weight < 0:
            raise ValueError(f"full_set_weight must be >= 0, got {full_set_weight}")
        if subset_reduction not in ("mean", "sum"):
            raise ValueError(f"subset_reduction must be 'mean' or 'sum', got {subset_reduction!r}")
        self.full_set_weight = float(full_set_weight)
        self.subset_reduction = subset_reduction
        self.use_sigmoid = use_sigmoid
        self.ds_weights = weights
        self.lambda_hd = float(lambda_hd)
        self.lambda_mi = float(lambda_mi)
        self.divergence = None if divergence is None else build_divergence(divergence, alpha, use_sigmoid)
        self.dice = MemoryEfficientSoftDiceLoss(
            apply_nonlin=None, batch_dice=batch_dice, do_bg=True, smooth=smooth, ddp=ddp
        )
        self.dice_for_logging = (
            MemoryEfficientSoftDiceLoss(apply_nonlin=None, batch_dice=batch_dice, do_bg=True, smooth=smooth,
                                        ddp=False)
            if log_dice_per_subset else None
        )
        self.mi = VariationalMILoss(detach_teacher=detach_teacher)
        self.lambda_kd = float(lambda_kd)
        self.distillation = (
            SoftHolderDivergenceLoss(alpha, kd_gamma, kd_temperature, use_sigmoid, detach_teacher=True)
            if lambda_kd > 0 else None
        )
        self.last_parts: dict[str, float | list[float]] = {}

    def forward(self, output: dict, target: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        loss, self.last_parts = self.compute(output, target)
        return loss

    def compute(
        self, output: dict, target: Sequence[torch.Tensor] | torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float | list[float]]]:
        """The loss and its logged parts (see the class docstring)."""
        logits = output["logits"]
        logits = [logits] if isinstance(logits, torch.Tensor) else list(logits)
        targets = [target] if isinstance(target, torch.Tensor) else list(target)
        if not len(self.ds_weights) == len(logits) == len(targets):
            raise ValueError(
                f"{len(self.ds_weights)} deep-supervision weights, {len(logits)} logit scales and "
                f"{len(targets)} target scales; they must match"
            )
        device = logits[0].device
        num_subsets = logits[0].shape[1] if logits[0].ndim >= 4 else 0
        full_weight = self.full_set_weight if num_subsets > 1 else 1.0
        if self.distillation is not None:
            self._check_teacher(output)
        with autocast_off(device):
            zero = logits[0].new_zeros((), dtype=torch.float32)
            dice, hd, kd, per_subset, full = zero, zero, zero, None, zero
            for w, h, y in zip(self.ds_weights, logits, targets, strict=True):
                if w == 0:
                    continue
                if h.ndim < 4 or h.shape[1] != num_subsets:
                    raise ValueError(
                        "logits must be (B, S, C, *spatial) with the same S at every scale, "
                        f"got {tuple(h.shape)}"
                    )
                fused = h.float()
                probs, onehot = self._dice_inputs(fused, y)
                dice = dice + w * self.dice(probs, onehot)
                if per_subset is None and self.dice_for_logging is not None:
                    per_subset = self._dice_per_subset(probs, onehot, num_subsets)
                if self.divergence is not None:
                    hd = hd + w * self.divergence(fused, y.unsqueeze(1), class_dim=2)
                if self.distillation is not None and num_subsets > 1:
                    kd = kd + w * self._distillation_term(fused)
                if full_weight != 1:
                    full = full + w * self._full_set_term(fused, probs, onehot, y)
            mi, mi_full = self._mi(output, num_subsets, device)
            loss = dice + self.lambda_hd * hd + self.lambda_mi * mi + self.lambda_kd * kd
            full = full + self.lambda_mi * mi_full
            loss = self._reduce_subsets(loss, full, num_subsets, full_weight)
        names = ("dice", "hd", "mi") if self.distillation is None else ("dice", "hd", "mi", "kd")
        values = torch.stack([dice, hd, mi, kd][: len(names)]).detach().tolist()
        parts: dict[str, float | list[float]] = dict(zip(names, values, strict=True))
        if per_subset is not None:
            parts["dice_per_subset"] = per_subset.tolist()
        return loss, parts

    def _reduce_subsets(
        self, mean_loss: torch.Tensor, full: torch.Tensor, num_subsets: int, full_weight: float
    ) -> torch.Tensor:
        """(Σ_{S≠F} L_S + ω L_F) / Z from the mean over subsets and the full set's term L_F."""
        if full_weight == 1 and self.subset_reduction == "mean":
            return mean_loss  # the paper's loss, as computed
        n = max(num_subsets, 1)
        total = n * mean_loss + (full_weight - 1) * full
        return total / (n - 1 + full_weight) if self.subset_reduction == "mean" else total

    def _full_set_term(
        self, fused: torch.Tensor, probs: torch.Tensor, onehot: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Dice + λ2·D of the last subset of the step (the full set) at one scale."""
        channels = probs.shape[1] // fused.shape[1]
        term = self.dice(probs[:, -channels:], onehot[:, -channels:])
        if self.divergence is not None:
            term = term + self.lambda_hd * self.divergence(fused[:, -1:], y.unsqueeze(1), class_dim=2)
        return term

    @staticmethod
    def _check_teacher(output: dict) -> None:
        """Refuse a step whose last subset (the distillation teacher) is not the full set."""
        mask = output.get("subset_mask")
        # per-sample (B, S, M) masks: the last subset must be each sample's whole (available) set
        full = None if mask is None else mask[-1].bool().all() if mask.dim() == 2 else (
            mask[:, -1] >= mask.amax(dim=1)).all()
        if full is not None and not bool(full):
            raise ValueError(
                "the distillation teacher is the last subset of the step and must be the full set, "
                f"got the subset mask {mask.tolist()}"
            )

    def _distillation_term(self, fused: torch.Tensor) -> torch.Tensor:
        """Σ_{S ≠ F} KD(Ŷ_S ‖ sg(Ŷ_F)) / n at one scale, for fused logits (B, n, C, *sp), F the last.

        Every student subset has the same number of values, so the mean over all of them, times
        (n − 1)/n, is the mean over the n subsets of each one's mean, the full set's 0 included.
        """
        n = fused.shape[1]
        return self.distillation(fused[:, :-1], fused[:, -1:], class_dim=2) * ((n - 1) / n)

    def _dice_inputs(self, fused: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (B, S·C', *sp) and one-hot targets repeated per subset, C' = C (sigmoid) or C − 1.

        The subset axis goes into the channel axis, not the batch axis: batch Dice sums over the
        batch, and nnU-Net's Dice averages over channels, so the mean over S·C' channels is the
        mean over subsets of each subset's Dice loss.
        """
        b, s, c = fused.shape[:3]
        spatial = fused.shape[3:]
        if self.use_sigmoid:
            probs = torch.sigmoid(fused)
            onehot = hard_target(y, c, 1, use_sigmoid=True)
        else:
            probs = torch.softmax(fused, 2)[:, :, 1:]
            onehot = hard_target(y, c, 1, use_sigmoid=False)[:, 1:]
        onehot = onehot.repeat(1, s, *[1] * len(spatial))
        return probs.reshape(b, -1, *spatial), onehot

    def _dice_per_subset(self, probs: torch.Tensor, onehot: torch.Tensor, num_subsets: int) -> torch.Tensor:
        channels = probs.shape[1] // num_subsets
        with torch.no_grad():
            return torch.stack([
                self.dice_for_logging(probs[:, i * channels:(i + 1) * channels],
                                      onehot[:, i * channels:(i + 1) * channels])
                for i in range(num_subsets)
            ])

    def _mi(self, output: dict, num_subsets: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Σ_j γ_j MI^j: its mean over the step's subsets and its value for the last one (the full set)."""
        if self.lambda_mi == 0:
            # Without this zero-weighted term the MI regressors, which the network still runs, would
            # get no gradient, and DDP (no find_unused_parameters in nnU-Net) stops at the next step.
            learned = [*output.get("mi_pred", []), *output.get("mi_var", [])]
            zero = torch.zeros((), device=device)
            return (0.0 * sum(t.float().sum() for t in learned) if learned else zero), zero
        missing = [k for k in ("mi_pred", "mi_target", "mi_var") if k not in output]
        if missing:
            raise KeyError(f"lambda_mi > 0 needs the network outputs {missing}")
        preds, targets, variances = output["mi_pred"], output["mi_target"], output["mi_var"]
        if not len(preds) == len(targets) == len(variances) > 0:
            raise ValueError("mi_pred, mi_target and mi_var must be non-empty lists of one length")
        if any(p.shape[1] != num_subsets for p in preds):
            raise ValueError(f"mi_pred must have {num_subsets} subsets on axis 1, like the logits")
        gammas = mi_stage_weights(len(preds))
        # one per-subset evaluation per stage; its mean is exactly what self.mi returns
        per_stage = zip(gammas, preds, targets, variances, strict=True)
        stages = [(g, self.mi.per_subset(p, t, v)) for g, p, t, v in per_stage]
        return sum(g * ps.mean() for g, ps in stages), sum(g * ps[-1] for g, ps in stages)
