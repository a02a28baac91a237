"""Tests of HolderMILoss against a plain loop over subsets and scales that calls nnU-Net's Dice with
its own nonlinearity and background setting, plus robustness and gradient flow. The inputs are
per-modality logits fused by the paper's network's `fuse_logits`; the loop fuses by hand."""

from __future__ import annotations

import math

import pytest
import torch
from nnunet_holder.architectures.fusion import fuse_logits
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.utilities.helpers import softmax_helper_dim1

from nnunet_holder.losses import HolderMILoss, build_divergence
from nnunet_holder.subsets import all_subsets, fusion_weights, subset_mask

C = 3


def nnunet_ds_weights(num_scales: int) -> list[float]:
    """As nnUNetTrainer._build_loss: 1/2^i, the last set to 0, normalised to sum 1."""
    w = [1 / 2**i for i in range(num_scales)]
    w[-1] = 0.0
    return [x / sum(w) for x in w]


def make_case(seed, m, use_sigmoid, num_scales=3, spatial=(8, 6, 4), subsets=None, mi_stages=2, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    b = 2
    subsets = all_subsets(m) if subsets is None else subsets
    s = len(subsets)
    logits, targets = [], []
    for k in range(num_scales):
        sp = tuple(max(1, x // 2**k) for x in spatial)
        logits.append((torch.randn(b, m, C, *sp, generator=g) * scale).requires_grad_())
        if use_sigmoid:
            y = torch.rand(b, C, *sp, generator=g) > 0.6
            y[1, 2] = False  # an empty region
        else:
            y = torch.randint(0, C, (b, 1, *sp), generator=g)
            y[1][y[1] == 2] = 0  # a class absent from one sample
        targets.append(y)
    feats = [(4, (2, 2, 2)[: len(spatial)]), (6, (1, 1, 1)[: len(spatial)])][-mi_stages:]
    output = {
        "per_modality": logits,  # the leaves; the loss reads the fused "logits"
        "logits": [fuse_logits(h, fusion_weights(subset_mask(subsets, m))) for h in logits],
        "mi_pred": [torch.randn(b, s, f, *sp, generator=g).requires_grad_() for f, sp in feats],
        "mi_target": [torch.randn(b, f, *sp, generator=g).requires_grad_() for f, sp in feats],
        "mi_var": [(torch.rand(f, generator=g) + 0.5).requires_grad_() for f, _ in feats],
    }
    return output, targets, subsets


def reference_loss(*args, **kwargs):
    """The paper's loss: the mean over subsets of `reference_terms`, and the per-subset Dice terms."""
    per_subset, dices = reference_terms(*args, **kwargs)
    return per_subset.mean(), dices


def reference_terms(output, targets, subsets, use_sigmoid, ds_weights, divergence, batch_dice,
                    lambda_hd=1.0, lambda_mi=1.0, alpha=1.1, class_weights=None):
    """Each subset's loss L_S written as the paper's loop: one subset at a time, nnU-Net's Dice as
    nnU-Net builds it. Returns (L_S per subset, the Dice part of each)."""
    dice_loss = MemoryEfficientSoftDiceLoss(
        apply_nonlin=torch.sigmoid if use_sigmoid else softmax_helper_dim1,
        batch_dice=batch_dice, do_bg=use_sigmoid, smooth=1e-5, ddp=False,
    )
    div = build_divergence(divergence, alpha, use_sigmoid) if divergence else None
    k_stages = len(output["mi_pred"])
    gammas = [j / (k_stages * (k_stages + 1) / 2) for j in range(1, k_stages + 1)]
    per_subset, dices = [], []
    for s_idx, subset in enumerate(subsets):
        total, dice_total = 0.0, 0.0
        for w, h, y in zip(ds_weights, output["per_modality"], targets, strict=True):
            if w == 0:
                continue
            if class_weights is None:
                fused = h[:, list(subset)].mean(1)
            else:  # Σ_i w_{S,i,c} h_{i,c} / Σ_i w_{S,i,c}, a weighted mean per class
                w_s = class_weights[list(subset)].view(1, len(subset), -1, *[1] * (h.ndim - 3))
                fused = (w_s * h[:, list(subset)]).sum(1) / w_s.sum(1)
            d = dice_loss(fused, y)
            dice_total = dice_total + w * d
            total = total + w * d
            if div is not None:
                total = total + w * lambda_hd * div(fused, y)
        mi = zip(gammas, output["mi_pred"], output["mi_target"], output["mi_var"], strict=True)
        for gamma, mu, t, var in mi:
            v = var.view(-1, *[1] * (t.ndim - 2))
            nll = 0.5 * torch.log(v) + (t - mu[:, s_idx]) ** 2 / (2 * v)
            total = total + lambda_mi * gamma * nll.mean()
        per_subset.append(total)
        dices.append(dice_total)
    return torch.stack(per_subset), torch.stack(dices)


@pytest.mark.parametrize("use_sigmoid", [True, False])
@pytest.mark.parametrize("batch_dice", [True, False])
@pytest.mark.parametrize("m,num_scales", [(2, 2), (3, 3), (4, 3)])
def test_vectorised_equals_subset_loop(use_sigmoid, batch_dice, m, num_scales):
    output, targets, subsets = make_case(m * 10 + num_scales, m, use_sigmoid, num_scales)
    weights = nnunet_ds_weights(num_scales)
    loss = HolderMILoss(use_sigmoid, ds_weights=weights, batch_dice=batch_dice)
    got = loss(output, targets)
    expected, _ = reference_loss(output, targets, subsets, use_sigmoid, weights, "holder", batch_dice)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("use_sigmoid", [True, False])
@pytest.mark.parametrize(
    "full_set_weight,reduction", [(2.0, "mean"), (1.0, "sum"), (3.0, "sum"), (0.0, "mean")]
)
def test_subset_weights_equal_weighted_subset_loop(use_sigmoid, full_set_weight, reduction):
    """(Σ_{S≠F} L_S + ω L_F) / Z with the full set last, Z = n − 1 + ω ("mean") or 1 ("sum")."""
    subsets = [(1,), (0, 2), (0, 1, 2)]  # a `sample k` step: the full set last
    output, targets, _ = make_case(11, 3, use_sigmoid, subsets=subsets)
    weights = nnunet_ds_weights(3)
    loss = HolderMILoss(use_sigmoid, ds_weights=weights, full_set_weight=full_set_weight,
                        subset_reduction=reduction)
    got = loss(output, targets)
    terms, _ = reference_terms(output, targets, subsets, use_sigmoid, weights, "holder", False)
    total = terms[:-1].sum() + full_set_weight * terms[-1]
    expected = total / (len(subsets) - 1 + full_set_weight) if reduction == "mean" else total
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    paper = HolderMILoss(use_sigmoid, ds_weights=weights)(output, targets)
    assert got.item() != pytest.approx(paper.item(), rel=1e-3)


def test_subset_weights_refuse_bad_values():
    with pytest.raises(ValueError, match="full_set_weight"):
        HolderMILoss(True, full_set_weight=-1.0)
    with pytest.raises(ValueError, match="subset_reduction"):
        HolderMILoss(True, subset_reduction="max")


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_weighted_fusion_equals_subset_loop(use_sigmoid):
    m = 4
    output, targets, subsets = make_case(7, m, use_sigmoid)
    beta = torch.randn(m, C, generator=torch.Generator().manual_seed(3)).requires_grad_()
    weights_smc = fusion_weights(subset_mask(subsets, m), beta)
    output["logits"] = [fuse_logits(h, weights_smc) for h in output["per_modality"]]
    weights = nnunet_ds_weights(3)
    got = HolderMILoss(use_sigmoid, ds_weights=weights)(output, targets)
    expected, _ = reference_loss(
        output, targets, subsets, use_sigmoid, weights, "holder", False, class_weights=beta.exp()
    )
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    got.backward()
    assert beta.grad.abs().sum() > 0


@pytest.mark.parametrize("divergence", ["holder_volume", "js", "neyman_chi2", None])
@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_other_divergences_weights_and_2d(divergence, use_sigmoid):
    subsets = [(0,), (1, 2), (0, 1, 2)]  # a `sample k` step
    output, targets, _ = make_case(7, 3, use_sigmoid, 3, spatial=(12, 10), subsets=subsets, mi_stages=1)
    weights = [0.5, 0.3, 0.2]
    loss = HolderMILoss(use_sigmoid, ds_weights=weights, divergence=divergence, alpha=1.3,
                        lambda_hd=0.7, lambda_mi=2.0, batch_dice=True)
    got = loss(output, targets)
    expected, _ = reference_loss(output, targets, subsets, use_sigmoid, weights, divergence, True,
                                 lambda_hd=0.7, lambda_mi=2.0, alpha=1.3)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_parts_and_per_subset_dice(use_sigmoid):
    output, targets, subsets = make_case(3, 3, use_sigmoid, 2, mi_stages=1)
    weights = nnunet_ds_weights(2)
    loss = HolderMILoss(use_sigmoid, ds_weights=weights, lambda_hd=0.0, lambda_mi=0.0,
                        log_dice_per_subset=True)
    value, parts = loss.compute(output, targets)
    expected, dices = reference_loss(output, targets, subsets, use_sigmoid, weights, "holder", False,
                                     lambda_hd=0.0, lambda_mi=0.0)
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["dice"] == pytest.approx(dices.mean().item(), rel=1e-6)
    # scale 1 has weight 0, so each subset's Dice is its scale-0 Dice times w_0
    assert parts["dice_per_subset"] == pytest.approx((dices / weights[0]).tolist(), rel=1e-6)
    assert parts["hd"] > 0 and parts["mi"] == 0.0
    loss(output, targets)
    assert loss.last_parts == parts


def test_single_scale_and_bare_tensors():
    output, targets, subsets = make_case(4, 2, True, 1)
    loss = HolderMILoss(True, ds_weights=None)
    expected, _ = reference_loss(output, targets, subsets, True, [1.0], "holder", False)
    bare = dict(output, logits=output["logits"][0])
    assert loss(bare, targets[0]).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_gradients_reach_every_modality_and_the_mi_inputs(use_sigmoid):
    output, targets, _ = make_case(5, 4, use_sigmoid, 3)
    HolderMILoss(use_sigmoid, ds_weights=nnunet_ds_weights(3))(output, targets).backward()
    for k, h in enumerate(output["per_modality"][:2]):
        for i in range(4):
            assert h.grad[:, i].abs().sum() > 0, (k, i)
    assert output["per_modality"][2].grad is None  # weight 0: skipped, as nnU-Net does
    for mu, var, t in zip(output["mi_pred"], output["mi_var"], output["mi_target"], strict=True):
        assert mu.grad.abs().sum() > 0 and var.grad.abs().sum() > 0
        assert t.grad is None  # teacher detached by default


def test_teacher_gets_gradient_when_not_detached():
    output, targets, _ = make_case(6, 2, True, 2)
    HolderMILoss(True, ds_weights=[0.6, 0.4], detach_teacher=False)(output, targets).backward()
    assert all(t.grad.abs().sum() > 0 for t in output["mi_target"])


def test_lambda_mi_zero_keeps_the_regressor_in_the_graph():
    """DDP needs a gradient (even zero) for the MI regressor that the network still runs."""
    output, targets, _ = make_case(8, 3, True, 2)
    loss = HolderMILoss(True, ds_weights=[0.6, 0.4], lambda_mi=0.0)
    value, parts = loss.compute(output, targets)
    value.backward()
    assert parts["mi"] == 0.0
    for mu, var in zip(output["mi_pred"], output["mi_var"], strict=True):
        assert mu.grad is not None and var.grad is not None
        assert mu.grad.abs().sum() == 0


@pytest.mark.parametrize("use_sigmoid", [True, False])
@pytest.mark.parametrize("divergence", ["holder", "holder_volume", "neyman_chi2"])
def test_finite_under_bf16_autocast_saturated_logits_and_empty_targets(use_sigmoid, divergence):
    output, targets, _ = make_case(9, 4, use_sigmoid, 3, scale=1.0)
    for h in output["per_modality"]:
        h.data = 100.0 * torch.sign(h.data)
    output["logits"] = [fuse_logits(h, fusion_weights(subset_mask(all_subsets(4), 4)))
                        for h in output["per_modality"]]
    for y in targets:
        y.zero_()  # all background / every region empty
    loss = HolderMILoss(use_sigmoid, ds_weights=nnunet_ds_weights(3), divergence=divergence,
                        batch_dice=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = dict(output, logits=[h.bfloat16() for h in output["logits"]],
                    mi_pred=[p.bfloat16() for p in output["mi_pred"]])
        value, parts = loss.compute(bf16, targets)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert all(math.isfinite(parts[k]) for k in ("dice", "hd", "mi"))
    grads = [t.grad for t in (*output["per_modality"][:2], *output["mi_pred"], *output["mi_var"])]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_input_errors():
    output, targets, _ = make_case(10, 2, True, 2)
    with pytest.raises(ValueError, match="deep-supervision"):
        HolderMILoss(True, ds_weights=[1.0])(output, targets)
    logits = output["logits"]
    with pytest.raises(ValueError, match="same S"):
        HolderMILoss(True, ds_weights=[0.5, 0.5])(dict(output, logits=[logits[0], logits[1][:, :2]]), targets)
    with pytest.raises(ValueError, match="mi_pred must have"):
        HolderMILoss(True, ds_weights=[0.5, 0.5])(dict(output, logits=[h[:, :2] for h in logits]), targets)
    no_mi = {"logits": logits}
    with pytest.raises(KeyError, match="mi_pred"):
        HolderMILoss(True, ds_weights=[0.5, 0.5])(no_mi, targets)
    assert torch.isfinite(HolderMILoss(True, ds_weights=[0.5, 0.5], lambda_mi=0.0)(no_mi, targets))
    with pytest.raises(ValueError, match="ds_weights"):
        HolderMILoss(True, ds_weights=[0.0, 0.0])
    with pytest.raises(ValueError, match="unknown divergence"):
        HolderMILoss(True, divergence="l1")
