"""Tests of the Hölder pseudo-divergence (functional core and both loss forms) and the divergence
family of Table IV, against plain float64 formulas written out here."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nnunet_holder.losses import DIVERGENCES, HolderDivergenceLoss, build_divergence, holder_divergence
from nnunet_holder.losses.divergences import NEYMAN_LOG_P_FLOOR

FAMILY = [n for n in DIVERGENCES if not n.startswith("holder")]


def plain_holder(p: torch.Tensor, q: torch.Tensor, alpha: float, dim) -> torch.Tensor:
    beta = alpha / (alpha - 1)
    inner = (p * q).sum(dim)
    norm_p = (p**alpha).sum(dim) ** (1 / alpha)
    norm_q = (q**beta).sum(dim) ** (1 / beta)
    return -torch.log(inner / (norm_p * norm_q))


def random_case(seed: int, use_sigmoid: bool, shape=(2, 3, 5, 4, 3), scale: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g) * scale
    if use_sigmoid:
        target = torch.rand(shape, generator=g) > 0.6
    else:
        target = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=g)
    return logits, target


def onehot(target: torch.Tensor, num_classes: int, use_sigmoid: bool) -> torch.Tensor:
    if use_sigmoid:
        return target.double()
    return F.one_hot(target[:, 0].long(), num_classes).movedim(-1, 1).double()


def plain_voxel_distributions(logits, target, use_sigmoid):
    """Predicted and label distributions with the outcome axis last, float64, no log-space tricks."""
    z = logits.double()
    if use_sigmoid:
        p = torch.sigmoid(z)
        y = target.double()
        return torch.stack([p, 1 - p], -1), torch.stack([y, 1 - y], -1)
    c = z.shape[1]
    return torch.softmax(z, 1).movedim(1, -1), onehot(target, c, False).movedim(1, -1)


def plain_holder_voxel(logits, target, alpha, use_sigmoid):
    p, q = plain_voxel_distributions(logits, target, use_sigmoid)
    return plain_holder(p, q, alpha, -1).mean()


def plain_holder_volume(logits, target, alpha, use_sigmoid):
    z = logits.double()
    c = z.shape[1]
    probs = torch.sigmoid(z) if use_sigmoid else torch.softmax(z, 1)
    q_all = onehot(target, c, use_sigmoid)
    terms = []
    for n in range(z.shape[0]):
        for k in range(0 if use_sigmoid else 1, c):
            q = q_all[n, k].flatten()
            if q.sum() == 0:
                continue
            terms.append(plain_holder(probs[n, k].flatten(), q, alpha, 0))
    return torch.stack(terms).mean()


# ---- functional core ----------------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [1.05, 1.1, 1.5, 3.0])
def test_core_equals_plain_formula(alpha):
    g = torch.Generator().manual_seed(0)
    p = torch.rand(4, 7, 9, generator=g, dtype=torch.float64) + 1e-3
    q = torch.rand(4, 7, 9, generator=g, dtype=torch.float64) + 1e-3
    for dim in (-1, 1, (1, 2)):
        got = holder_divergence(p.log(), q.log(), alpha, dim)
        torch.testing.assert_close(got, plain_holder(p, q, alpha, dim), rtol=1e-9, atol=1e-12)


def test_core_nonnegative_on_random_densities():
    for seed in range(30):
        g = torch.Generator().manual_seed(seed)
        log_p = torch.randn(16, 5, generator=g) * 4
        log_q = torch.randn(16, 5, generator=g) * 4
        alpha = 1.0 + 2.0 * torch.rand(1, generator=g).item() + 1e-3
        assert (holder_divergence(log_p, log_q, alpha, -1) >= -1e-6).all()


def test_core_zero_for_hard_labels_with_gradients_finite():
    labels = torch.tensor([0, 2, 1, 2])
    log_onehot = torch.log(F.one_hot(labels, 3).double())  # -inf off the label
    log_p = log_onehot.clone().requires_grad_()
    d = holder_divergence(log_p, log_onehot, 1.1, -1)
    assert torch.all(d.abs() < 1e-12)
    d.sum().backward()
    assert torch.isfinite(log_p.grad).all()


def test_core_zero_iff_p_alpha_proportional_to_q_beta():
    alpha = 1.3
    beta = alpha / (alpha - 1)
    q = torch.rand(6, 10, dtype=torch.float64) + 0.1
    p = 7.0 * q ** (beta / alpha)
    assert torch.all(holder_divergence(p.log(), q.log(), alpha, -1).abs() < 1e-12)
    # soft q: p = q is NOT a zero of the pseudo-divergence
    assert torch.all(holder_divergence(q.log(), q.log(), alpha, -1) > 1e-3)


@pytest.mark.parametrize("scale_p,scale_q", [(1e-3, 1.0), (1.0, 250.0), (42.0, 0.01)])
def test_core_projective(scale_p, scale_q):
    g = torch.Generator().manual_seed(1)
    log_p = torch.randn(3, 50, generator=g, dtype=torch.float64)
    log_q = torch.randn(3, 50, generator=g, dtype=torch.float64)
    ref = holder_divergence(log_p, log_q, 1.1, -1)
    got = holder_divergence(log_p + math.log(scale_p), log_q + math.log(scale_q), 1.1, -1)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


def test_voxel_form_tends_to_cross_entropy_as_alpha_to_one():
    g = torch.Generator().manual_seed(2)
    log_p = torch.log_softmax(torch.randn(8, 4, generator=g, dtype=torch.float64), -1)
    labels = torch.randint(0, 4, (8,), generator=g)
    log_q = torch.log(F.one_hot(labels, 4).double())
    cross_entropy = -log_p.gather(-1, labels[:, None])[:, 0]
    entropy = -(log_p.exp() * log_p).sum(-1)
    eps = 1e-5
    d = holder_divergence(log_p, log_q, 1 + eps, -1)
    # D_{1+ε} = CE − ε·H(p) + O(ε²)
    torch.testing.assert_close((d - cross_entropy) / eps, -entropy, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("alpha", [1.0, 0.5, -2.0])
def test_alpha_at_most_one_rejected(alpha):
    with pytest.raises(ValueError, match="alpha must be > 1"):
        HolderDivergenceLoss(alpha=alpha)
    with pytest.raises(ValueError, match="alpha must be > 1"):
        holder_divergence(torch.zeros(3), torch.zeros(3), alpha)


def test_unknown_form_and_divergence_rejected():
    with pytest.raises(ValueError, match="form"):
        HolderDivergenceLoss(form="pixel")
    with pytest.raises(ValueError, match="unknown divergence"):
        build_divergence("wasserstein")


# ---- the loss ---------------------------------------------------------------------------------

@pytest.mark.parametrize("use_sigmoid", [True, False])
@pytest.mark.parametrize("alpha", [1.1, 1.5])
def test_voxel_loss_equals_plain_formula(use_sigmoid, alpha):
    logits, target = random_case(3, use_sigmoid)
    got = HolderDivergenceLoss(alpha, "voxel", use_sigmoid)(logits, target)
    expected = plain_holder_voxel(logits, target, alpha, use_sigmoid)
    torch.testing.assert_close(got.double(), expected, rtol=2e-6, atol=0)


@pytest.mark.parametrize("use_sigmoid", [True, False])
@pytest.mark.parametrize("alpha", [1.05, 1.1, 2.0])
def test_voxel_loss_is_cross_entropy_of_sharpened_logits(use_sigmoid, alpha):
    """With hard labels, −log p_y + (1/α) log Σ p^α = CE(α z, y) / α (BCE per region for sigmoid)."""
    logits, target = random_case(14, use_sigmoid, scale=4.0)
    if use_sigmoid:
        expected = F.binary_cross_entropy_with_logits(alpha * logits, target.float()) / alpha
    else:
        expected = F.cross_entropy(alpha * logits, target[:, 0]) / alpha
    got = HolderDivergenceLoss(alpha, "voxel", use_sigmoid)(logits, target)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_voxel_loss_equals_core_with_log_labels(use_sigmoid):
    """The hard-label closed form equals the general log-space core fed log(one-hot) with −inf."""
    logits, target = random_case(4, use_sigmoid, scale=5.0)
    z = logits.double()
    if use_sigmoid:
        log_p = torch.stack([F.logsigmoid(z), F.logsigmoid(-z)], -1)
        y = target.double()
        log_q = torch.log(torch.stack([y, 1 - y], -1))
        expected = holder_divergence(log_p, log_q, 1.1, -1).mean()
    else:
        log_q = torch.log(onehot(target, z.shape[1], False))
        expected = holder_divergence(torch.log_softmax(z, 1), log_q, 1.1, 1).mean()
    got = HolderDivergenceLoss(1.1, "voxel", use_sigmoid)(logits, target)
    torch.testing.assert_close(got.double(), expected, rtol=2e-6, atol=0)


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_volume_loss_equals_plain_formula_skipping_empty_maps(use_sigmoid):
    logits, target = random_case(5, use_sigmoid)
    if use_sigmoid:
        target[0, 1] = False  # an empty region in one sample
    else:
        target[1][target[1] == 2] = 0  # class 2 absent from sample 1
    got = HolderDivergenceLoss(1.1, "volume", use_sigmoid)(logits, target)
    expected = plain_holder_volume(logits, target, 1.1, use_sigmoid)
    torch.testing.assert_close(got.double(), expected, rtol=2e-6, atol=0)


@pytest.mark.parametrize("form", ["voxel", "volume"])
@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_loss_nonnegative_on_random_inputs(form, use_sigmoid):
    loss = HolderDivergenceLoss(1.1, form, use_sigmoid)
    for seed in range(20):
        logits, target = random_case(100 + seed, use_sigmoid, shape=(2, 3, 6, 5), scale=1.0 + seed)
        assert loss(logits, target) >= 0


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_voxel_loss_zero_at_the_label(use_sigmoid):
    _, target = random_case(6, use_sigmoid)
    y = onehot(target, 3, use_sigmoid).float()
    logits = 100.0 * (2 * y - 1)  # p = label to float32 precision
    assert HolderDivergenceLoss(1.1, "voxel", use_sigmoid)(logits, target).abs() < 1e-6


@pytest.mark.parametrize("inside", [0.05, 0.5, 0.97])
def test_volume_loss_zero_when_proportional_to_the_mask(inside):
    _, target = random_case(7, True)
    logit_inside = math.log(inside / (1 - inside))
    logits = torch.where(target, torch.tensor(logit_inside), torch.tensor(-100.0))
    assert HolderDivergenceLoss(1.1, "volume", True)(logits, target).abs() < 1e-6


@pytest.mark.parametrize("scale", [1e-4, 0.3, 1.0, 1e5])
def test_volume_core_zero_for_any_positive_scale_of_the_mask(scale):
    mask = torch.rand(2, 3, 64, dtype=torch.float64) > 0.5
    log_q = torch.log(mask.double())
    log_p = torch.log(scale * mask.double())
    assert torch.all(holder_divergence(log_p, log_q, 1.1, -1).abs() < 1e-10)


@pytest.mark.parametrize("form", ["voxel", "volume"])
@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_loss_gradcheck(form, use_sigmoid):
    logits, target = random_case(8, use_sigmoid, shape=(2, 3, 3, 2))
    logits = logits.double().requires_grad_()
    loss = HolderDivergenceLoss(1.2, form, use_sigmoid)
    assert torch.autograd.gradcheck(lambda z: loss(z, target), (logits,))


# ---- robustness (also for the family) ------------------------------------------------------------

def extreme_cases(use_sigmoid: bool):
    """±100 logits against random, empty and all-background targets."""
    g = torch.Generator().manual_seed(9)
    shape = (2, 3, 4, 4, 4)
    logits = 100.0 * torch.sign(torch.randn(shape, generator=g))
    if use_sigmoid:
        targets = [torch.rand(shape, generator=g) > 0.5, torch.zeros(shape, dtype=torch.bool)]
        targets[0][1, 2] = False
    else:
        labels = torch.randint(0, 3, (2, 1, 4, 4, 4), generator=g)
        targets = [labels, torch.zeros_like(labels)]
    return logits, targets


@pytest.mark.parametrize("name", DIVERGENCES)
@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_finite_under_bf16_autocast_saturated_logits_and_empty_targets(name, use_sigmoid):
    loss = build_divergence(name, 1.1, use_sigmoid)
    logits, targets = extreme_cases(use_sigmoid)
    for target in targets:
        for z in (logits, -logits, torch.zeros_like(logits)):
            leaf = z.clone().requires_grad_()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                value = loss(leaf.bfloat16(), target)
            value.backward()
            assert value.dtype == torch.float32
            assert torch.isfinite(value), (name, value)
            assert leaf.grad is not None and torch.isfinite(leaf.grad).all(), name


def test_volume_loss_all_empty_is_zero_and_backward_works():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.zeros(2, 3, 4, 4, dtype=torch.bool)
    value = HolderDivergenceLoss(1.1, "volume", True)(logits, target)
    assert value.item() == 0.0
    value.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_broadcast_subset_axis_equals_separate_calls():
    """class_dim=2 with a (N, 1, C, ...) target: the mean over subsets of the per-subset losses."""
    g = torch.Generator().manual_seed(10)
    logits = torch.randn(2, 4, 3, 5, 5, generator=g) * 3
    for use_sigmoid in (True, False):
        _, target = random_case(11, use_sigmoid, shape=(2, 3, 5, 5))
        for name in DIVERGENCES:
            loss = build_divergence(name, 1.1, use_sigmoid)
            together = loss(logits, target.unsqueeze(1), class_dim=2)
            separate = torch.stack([loss(logits[:, s], target) for s in range(4)]).mean()
            torch.testing.assert_close(together, separate, rtol=1e-6, atol=1e-7)


# ---- divergence family ------------------------------------------------------------------------

def plain_family(name: str, logits, target, use_sigmoid) -> torch.Tensor:
    p, q = plain_voxel_distributions(logits, target, use_sigmoid)
    if name == "kl":
        per_voxel = (torch.xlogy(q, q) - torch.xlogy(q, p)).sum(-1)
    elif name == "js":
        m = (p + q) / 2
        per_voxel = 0.5 * (torch.xlogy(p, p / m) + torch.xlogy(q, q / m)).sum(-1)
    elif name == "tv":
        per_voxel = 0.5 * (p - q).abs().sum(-1)
    elif name == "hellinger":
        per_voxel = 0.5 * ((p.sqrt() - q.sqrt()) ** 2).sum(-1)
    elif name == "neyman_chi2":
        per_voxel = ((q - p) ** 2 / p).sum(-1)
    elif name == "mse":
        if use_sigmoid:
            return ((p[..., 0] - q[..., 0]) ** 2).mean()
        return ((p - q) ** 2).mean()
    elif name == "bce":
        per_voxel = -(q * p.log()).sum(-1)
    return per_voxel.mean()


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_family_equals_plain_formula(name, use_sigmoid):
    logits, target = random_case(12, use_sigmoid, scale=2.5)  # |z| small enough that χ²'s clamp is idle
    got = build_divergence(name, use_sigmoid=use_sigmoid)(logits, target)
    expected = plain_family(name, logits, target, use_sigmoid)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_family_nonnegative_and_zero_at_the_label(name, use_sigmoid):
    loss = build_divergence(name, use_sigmoid=use_sigmoid)
    for seed in range(10):
        logits, target = random_case(200 + seed, use_sigmoid, shape=(2, 3, 6, 5), scale=1.0 + seed)
        assert loss(logits, target) > 0
    y = onehot(target, 3, use_sigmoid).float()
    assert loss(100.0 * (2 * y - 1), target).abs() < 1e-6


@pytest.mark.parametrize("use_sigmoid", [True, False])
def test_kl_and_bce_equal_torch_cross_entropy_for_hard_labels(use_sigmoid):
    logits, target = random_case(13, use_sigmoid, scale=4.0)
    if use_sigmoid:
        expected = F.binary_cross_entropy_with_logits(logits, target.float())
    else:
        expected = F.cross_entropy(logits, target[:, 0])
    for name in ("kl", "bce"):
        torch.testing.assert_close(build_divergence(name, use_sigmoid=use_sigmoid)(logits, target), expected)


def test_neyman_chi2_clamp_bounds_a_confidently_wrong_voxel():
    target = torch.tensor([[[1.0]]]).bool()
    value = build_divergence("neyman_chi2", use_sigmoid=True)(torch.tensor([[[-100.0]]]), target)
    # outcome "fg": (1 − e^−100)² / e^−20; outcome "bg": (0 − 1)² / 1
    assert value.item() == pytest.approx(math.exp(-NEYMAN_LOG_P_FLOOR) + 1.0, rel=1e-6)
