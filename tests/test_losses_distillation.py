"""Tests of the proper Hölder divergence between soft predictions (functional core and the loss on
logits) against plain float64 formulas written out here, its properties (≥ 0, zero iff p ∝ q,
finite under bf16 autocast and saturation, gradients), and of the distillation term of
HolderMILoss against a plain loop over the step's subsets and scales."""

from __future__ import annotations

import math

import pytest
import torch

from nnunet_holder.losses import (
    HolderMILoss,
    SoftHolderDivergenceLoss,
    holder_divergence,
    proper_holder_divergence,
)
from tests.test_losses_composite import make_case, nnunet_ds_weights, reference_terms


def plain_proper_holder(p: torch.Tensor, q: torch.Tensor, alpha: float, gamma: float, dim) -> torch.Tensor:
    """−log( Σ p^{γ/α} q^{γ/β} / ((Σ p^γ)^{1/α} (Σ q^γ)^{1/β}) ), float64, no log-space tricks."""
    beta = alpha / (alpha - 1)
    inner = (p ** (gamma / alpha) * q ** (gamma / beta)).sum(dim)
    return -torch.log(inner / ((p**gamma).sum(dim) ** (1 / alpha) * (q**gamma).sum(dim) ** (1 / beta)))


def plain_distributions(logits: torch.Tensor, use_sigmoid: bool, class_dim: int, temperature: float):
    """The per-voxel distributions with the outcome axis last: Bernoulli per region, or categorical."""
    z = logits.double() / temperature
    if use_sigmoid:
        p = torch.sigmoid(z)
        return torch.stack([p, 1 - p], -1)
    return torch.softmax(z, class_dim).movedim(class_dim, -1)


def plain_soft_loss(student, teacher, alpha, gamma, temperature, use_sigmoid, class_dim=1):
    p = plain_distributions(student, use_sigmoid, class_dim, temperature)
    q = plain_distributions(teacher, use_sigmoid, class_dim, temperature)
    return temperature**2 * plain_proper_holder(p, q, alpha, gamma, -1).mean()


def random_logits(seed: int, shape=(2, 3, 5, 4, 3), scale: float = 3.0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def random_density(seed: int, shape=(6, 5)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.01


# ---- functional core ------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha,gamma", [(1.1, 1.0), (1.1, 2.0), (2.0, 0.5), (3.0, 1.5)])
def test_functional_equals_the_formula(alpha, gamma):
    p, q = random_density(0), random_density(1)
    got = proper_holder_divergence(p.log(), q.log(), alpha, gamma, dim=1)
    assert torch.allclose(got, plain_proper_holder(p, q, alpha, gamma, 1), rtol=1e-10, atol=1e-12)
    assert (got > 0).all()


@pytest.mark.parametrize("alpha,gamma", [(1.1, 1.0), (1.5, 2.0), (4.0, 0.3)])
def test_zero_iff_proportional_and_projective(alpha, gamma):
    p, q = random_density(2), random_density(3)
    # q ∝ p with a different factor per row: 0; the pseudo-divergence of the same pair is not 0
    scale = torch.linspace(0.1, 7.0, p.shape[0], dtype=torch.float64).unsqueeze(1)
    assert proper_holder_divergence(p.log(), (scale * p).log(), alpha, gamma, 1).abs().max() < 1e-12
    assert (holder_divergence(p.log(), p.log(), alpha, 1) > 1e-3).all()
    base = proper_holder_divergence(p.log(), q.log(), alpha, gamma, 1)
    rescaled = proper_holder_divergence((3.0 * p).log(), (0.2 * q).log(), alpha, gamma, 1)
    assert torch.allclose(base, rescaled, rtol=1e-10)
    assert (base > 1e-4).all()


def test_special_cases_skew_bhattacharyya_and_cauchy_schwarz():
    p, q = random_density(4), random_density(5)
    p, q = p / p.sum(1, keepdim=True), q / q.sum(1, keepdim=True)
    alpha = 1.1
    beta = alpha / (alpha - 1)
    lam = 1 / alpha
    renyi = torch.log((p**lam * q ** (1 - lam)).sum(1)) / (lam - 1)
    assert torch.allclose(proper_holder_divergence(p.log(), q.log(), alpha, 1.0, 1), renyi / beta, rtol=1e-10)
    cs = -torch.log((p * q).sum(1) / ((p**2).sum(1).sqrt() * (q**2).sum(1).sqrt()))
    assert torch.allclose(proper_holder_divergence(p.log(), q.log(), 2.0, 2.0, 1), cs, rtol=1e-10)


@pytest.mark.parametrize("alpha,gamma", [(1.1, 1.0), (2.0, 2.0)])
def test_near_equal_distributions_the_divergence_is_gamma2_over_alpha_beta_of_kl(alpha, gamma):
    """The docstring's local scale: D ≈ γ²/(αβ)·KL(p ‖ q) for p near q (π ∝ q^γ equals q only for
    γ = 1, and for γ = 2 with a uniform q)."""
    q = torch.full((8,), 1 / 8, dtype=torch.float64) if gamma != 1 else random_density(6, (8,))
    q = q / q.sum()
    p = q * torch.exp(1e-3 * torch.randn(8, generator=torch.Generator().manual_seed(7), dtype=torch.float64))
    p = p / p.sum()
    kl = (p * (p / q).log()).sum()
    beta = alpha / (alpha - 1)
    d = proper_holder_divergence(p.log(), q.log(), alpha, gamma)
    assert d.item() == pytest.approx((gamma**2 / (alpha * beta) * kl).item(), rel=1e-2)


def test_bad_gamma_and_alpha_are_refused():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="gamma must be > 0"):
        proper_holder_divergence(x, x, 1.1, 0.0)
    with pytest.raises(ValueError, match="alpha must be > 1"):
        proper_holder_divergence(x, x, 1.0, 1.0)
    with pytest.raises(ValueError, match="temperature"):
        SoftHolderDivergenceLoss(temperature=0.0)
    with pytest.raises(ValueError, match="reduction"):
        SoftHolderDivergenceLoss(reduction="max")


# ---- the loss on logits ---------------------------------------------------------------------------

@pytest.mark.parametrize("use_sigmoid", [True, False])
@pytest.mark.parametrize("alpha,gamma,temperature", [(1.1, 1.0, 1.0), (1.1, 2.0, 2.0), (2.5, 0.7, 0.5)])
def test_loss_equals_the_per_voxel_formula(use_sigmoid, alpha, gamma, temperature):
    student, teacher = random_logits(10), random_logits(11)
    loss = SoftHolderDivergenceLoss(alpha, gamma, temperature, use_sigmoid)
    expected = plain_soft_loss(student, teacher, alpha, gamma, temperature, use_sigmoid)
    assert loss(student, teacher).item() == pytest.approx(expected.item(), rel=1e-5)
    per_voxel = SoftHolderDivergenceLoss(alpha, gamma, temperature, use_sigmoid, reduction="none")(
        student, teacher
    )
    assert per_voxel.shape == (student.shape if use_sigmoid else student.shape[:1] + student.shape[2:])
    # float32 leaves nearly equal voxels within rounding of 0; in float64 every value is >= 0
    assert (per_voxel >= -1e-6).all() and (per_voxel > 1e-6).float().mean() > 0.95
    exact = SoftHolderDivergenceLoss(alpha, gamma, temperature, use_sigmoid, reduction="none")(
        student.double(), teacher.double()
    )
    assert exact.dtype == torch.float64 and (exact >= 0).all()
    summed = SoftHolderDivergenceLoss(alpha, gamma, temperature, use_sigmoid, reduction="sum")
    assert summed(student, teacher).item() == pytest.approx(per_voxel.sum().item(), rel=1e-6)


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_loss_broadcasts_one_teacher_over_the_subset_axis(use_sigmoid):
    student, teacher = random_logits(12, (2, 4, 3, 5, 4)), random_logits(13, (2, 1, 3, 5, 4))
    loss = SoftHolderDivergenceLoss(1.3, 1.5, 1.7, use_sigmoid)
    expected = plain_soft_loss(student, teacher.expand_as(student), 1.3, 1.5, 1.7, use_sigmoid, class_dim=2)
    assert loss(student, teacher, class_dim=2).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("use_sigmoid", [True, False])
@pytest.mark.parametrize("scale", [3.0, 100.0])
def test_loss_is_zero_iff_the_distributions_agree(use_sigmoid, scale):
    z = random_logits(14, scale=scale)
    loss = SoftHolderDivergenceLoss(1.1, 1.0, 2.0, use_sigmoid, reduction="none")
    assert loss(z, z.clone()).abs().max() < 1e-6
    if not use_sigmoid:
        # softmax logits shifted by a constant per voxel predict the same distribution
        shift = random_logits(15, (2, 1, 5, 4, 3), scale=50.0)
        assert loss(z, z + shift).abs().max() < 1e-6
    # one voxel's prediction changed: the sign of a region's logit, or the classes' order
    other = z.clone()
    if use_sigmoid:
        other[0, 0, 0, 0, 0] *= -1.0
    else:
        other[0, :, 0, 0, 0] = z[0, :, 0, 0, 0].roll(1)
    d = loss(z, other)
    assert d[(0,) * d.ndim] > 1e-4


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_loss_is_finite_for_saturated_logits_and_under_bf16_autocast(use_sigmoid):
    base = torch.sign(random_logits(16))
    for scale in (100.0, 1e4):
        for student, teacher in ((base * scale, -base * scale), (base * scale, base * scale),
                                 (torch.zeros_like(base), base * scale)):
            leaf = student.clone().requires_grad_()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                value = SoftHolderDivergenceLoss(1.1, 1.0, 2.0, use_sigmoid)(leaf.bfloat16(),
                                                                              teacher.bfloat16())
            value.backward()
            assert value.dtype == torch.float32
            assert torch.isfinite(value) and value >= 0, (scale, value)
            assert torch.isfinite(leaf.grad).all()
    # opposite saturated predictions cost a lot; the same ones nothing
    z = base * 100.0
    loss = SoftHolderDivergenceLoss(1.1, 1.0, 1.0, use_sigmoid)
    assert loss(z, -z) > 1.0 and loss(z, z).abs() < 1e-6


@pytest.mark.parametrize("use_sigmoid", [True, False])
@pytest.mark.parametrize("alpha,gamma,temperature", [(1.1, 1.0, 1.0), (1.7, 2.0, 3.0)])
def test_loss_gradcheck(use_sigmoid, alpha, gamma, temperature):
    student = random_logits(17, (2, 3, 3, 2)).double().requires_grad_()
    teacher = random_logits(18, (2, 3, 3, 2)).double().requires_grad_()
    loss = SoftHolderDivergenceLoss(alpha, gamma, temperature, use_sigmoid, detach_teacher=False)
    assert torch.autograd.gradcheck(lambda s, t: loss(s, t), (student, teacher))


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_the_detached_teacher_gets_no_gradient(use_sigmoid):
    student = random_logits(19).requires_grad_()
    teacher = random_logits(20).requires_grad_()
    SoftHolderDivergenceLoss(use_sigmoid=use_sigmoid)(student, teacher).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0
    SoftHolderDivergenceLoss(use_sigmoid=use_sigmoid, detach_teacher=False)(student, teacher).backward()
    assert teacher.grad.abs().sum() > 0


# ---- the distillation term of HolderMILoss --------------------------------------------------------

def kd_loop(logits, ds_weights, alpha, gamma, temperature, use_sigmoid) -> torch.Tensor:
    """KD_S = Σ_k w_k · mean over samples and voxels of D(p_S ‖ p_F), for each subset S, one at a
    time; the full set (the last) gets 0."""
    n = logits[0].shape[1]
    per_subset = []
    for s in range(n - 1):
        total = 0.0
        for w, h in zip(ds_weights, logits, strict=True):
            if w == 0:
                continue
            total = total + w * plain_soft_loss(h[:, s], h[:, -1], alpha, gamma, temperature, use_sigmoid)
        per_subset.append(total)
    return torch.stack([*per_subset, torch.zeros((), dtype=torch.float64)])


@pytest.mark.parametrize("use_sigmoid", [True, False])
@pytest.mark.parametrize(
    "full_set_weight,reduction", [(1.0, "mean"), (2.0, "mean"), (1.0, "sum")]
)
def test_distillation_term_equals_a_subset_loop(use_sigmoid, full_set_weight, reduction):
    subsets = [(1,), (0, 2), (2,), (0, 1, 2)]  # a `sample k` step: the full set last
    output, targets, _ = make_case(21, 3, use_sigmoid, subsets=subsets, mi_stages=1)
    weights = nnunet_ds_weights(3)
    common = dict(ds_weights=weights, alpha=1.2, full_set_weight=full_set_weight, subset_reduction=reduction)
    loss = HolderMILoss(use_sigmoid, lambda_kd=0.7, kd_temperature=2.0, kd_gamma=1.5, **common)
    got, parts = loss.compute(output, targets)
    kd = kd_loop([h.detach() for h in output["logits"]], weights, 1.2, 1.5, 2.0, use_sigmoid)
    assert (kd[:-1] > 0).all()
    assert parts["kd"] == pytest.approx(kd.mean().item(), rel=1e-5)
    terms, _ = reference_terms(output, targets, subsets, use_sigmoid, weights, "holder", False, alpha=1.2)
    terms = terms.double() + 0.7 * kd
    total = terms[:-1].sum() + full_set_weight * terms[-1]
    expected = total / (len(subsets) - 1 + full_set_weight) if reduction == "mean" else total
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    without, parts_without = HolderMILoss(use_sigmoid, **common).compute(output, targets)
    assert "kd" not in parts_without
    assert {k: parts[k] for k in parts_without} == pytest.approx(parts_without, rel=1e-6)


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_the_full_set_teacher_gets_no_gradient_from_the_distillation_term(use_sigmoid):
    g = torch.Generator().manual_seed(22)
    logits = [torch.randn(2, 3, 3, *sp, generator=g).requires_grad_() for sp in ((6, 4, 4), (3, 2, 2))]
    if use_sigmoid:
        targets = [torch.rand(2, 3, *h.shape[3:], generator=g) > 0.5 for h in logits]
    else:
        targets = [torch.randint(0, 3, (2, 1, *h.shape[3:]), generator=g) for h in logits]
    output = {"logits": logits, "subset_mask": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])}
    weights = [0.7, 0.3]
    without = HolderMILoss(use_sigmoid, ds_weights=weights, lambda_mi=0.0)
    with_kd = HolderMILoss(use_sigmoid, ds_weights=weights, lambda_mi=0.0, lambda_kd=1e3)

    def kd_gradients() -> list[torch.Tensor]:
        """The gradient of λ_kd · KD alone: the other terms' gradients cancel, up to float32 rounding
        (about 1e-10 here), which the large λ_kd puts far below any gradient of the KD term."""
        return list(torch.autograd.grad(with_kd(output, targets) - without(output, targets), logits))

    for grad in kd_gradients():
        student = grad[:, :-1].flatten(2).abs().amax(-1)
        assert (student > 1e-3).all()  # every student subset and sample
        assert grad[:, -1].abs().max() < 1e-6 * student.max()  # the full set: the teacher
    with_kd.distillation.detach_teacher = False  # what the check would see if the teacher were trained
    assert all(grad[:, -1].abs().max() > 1e-3 for grad in kd_gradients())


def test_a_step_whose_last_subset_is_not_the_full_set_is_refused():
    subsets = [(0, 1, 2), (1,)]
    output, targets, _ = make_case(23, 3, True, subsets=subsets, mi_stages=1)
    output["subset_mask"] = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="teacher is the last subset of the step and must be the full set"):
        HolderMILoss(True, ds_weights=nnunet_ds_weights(3), lambda_kd=1.0)(output, targets)
    HolderMILoss(True, ds_weights=nnunet_ds_weights(3))(output, targets)  # no teacher, no check


def test_a_step_of_the_full_set_alone_has_no_distillation():
    output, targets, _ = make_case(24, 3, False, subsets=[(0, 1, 2)], mi_stages=1)
    loss = HolderMILoss(False, ds_weights=nnunet_ds_weights(3), lambda_kd=1.0)
    value, parts = loss.compute(output, targets)
    assert parts["kd"] == 0.0 and math.isfinite(value.item())
