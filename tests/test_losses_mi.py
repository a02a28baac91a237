"""Tests of the variational MI term: the Gaussian likelihood, the regressor, the teacher detach and
the stage weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nnunet_holder.losses import MIRegressor, VariationalMILoss, mi_stage_weights


def gaussian_nll_without_constant(mu, target, var):
    """−log N(target; mu, var) − ½ log 2π, per element, (B, S, F, *sp)."""
    shape = (1, 1, -1, *[1] * (mu.ndim - 3))
    normal = torch.distributions.Normal(mu.double(), var.double().sqrt().view(shape))
    return -normal.log_prob(target.double().unsqueeze(1)) - 0.5 * math.log(2 * math.pi)


def test_hand_made_case():
    # one voxel, one channel, two subsets: d_f = 1, μ = (0, 3), σ² = 2
    mu = torch.tensor([0.0, 3.0]).view(1, 2, 1, 1, 1, 1)
    target = torch.tensor([1.0]).view(1, 1, 1, 1, 1)
    var = torch.tensor([2.0])
    first = 0.5 * math.log(2.0) + (1.0 - 0.0) ** 2 / 4.0
    second = 0.5 * math.log(2.0) + (1.0 - 3.0) ** 2 / 4.0
    loss = VariationalMILoss()
    torch.testing.assert_close(loss.per_subset(mu, target, var), torch.tensor([first, second]))
    assert loss(mu, target, var).item() == pytest.approx((first + second) / 2, rel=1e-6)


@pytest.mark.parametrize("spatial", [(3, 4, 2), (5, 3)])
def test_equals_gaussian_nll_on_random_data(spatial):
    g = torch.Generator().manual_seed(0)
    b, s, f = 2, 5, 4
    mu = torch.randn(b, s, f, *spatial, generator=g)
    target = torch.randn(b, f, *spatial, generator=g)
    var = torch.rand(f, generator=g) * 3 + 0.1
    expected = gaussian_nll_without_constant(mu, target, var)
    loss = VariationalMILoss()
    torch.testing.assert_close(loss(mu, target, var).double(), expected.mean(), rtol=1e-6, atol=1e-7)
    per_subset = expected.transpose(0, 1).reshape(s, -1).mean(1)
    torch.testing.assert_close(loss.per_subset(mu, target, var).double(), per_subset, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("conv_op,spatial", [(nn.Conv3d, (3, 3, 2)), (nn.Conv2d, (4, 3))])
def test_regressor_variance_init_and_gradients_reach_every_parameter(conv_op, spatial):
    torch.manual_seed(1)
    reg = MIRegressor(6, conv_op)
    torch.testing.assert_close(reg.variance(), torch.full((6,), 5.0), rtol=0, atol=1e-5)
    assert reg.variance().dtype == torch.float32
    x = torch.randn(2 * 3, 6, *spatial)
    mu = reg(x).view(2, 3, 6, *spatial)
    target = torch.randn(2, 6, *spatial)
    VariationalMILoss()(mu, target, reg.variance()).backward()
    convs = [m for m in reg.modules() if isinstance(m, conv_op)]
    assert len(convs) == 3
    assert all(m.kernel_size == (1,) * len(spatial) for m in convs)
    for name, param in reg.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_regressor_parameters_are_registered():
    """The regressor's parameters must reach the network's optimizer (the paper's code missed this)."""
    reg = MIRegressor(4, nn.Conv3d)
    names = {n for n, _ in reg.named_parameters()}
    assert "rho" in names and sum(1 for n in names if n.endswith("weight")) == 3


@pytest.mark.parametrize("detach", [True, False])
def test_detach_teacher(detach):
    mu = torch.randn(2, 3, 4, 2, 2, requires_grad=True)
    target = torch.randn(2, 4, 2, 2, requires_grad=True)
    var = torch.rand(4) + 0.5
    VariationalMILoss(detach_teacher=detach)(mu, target, var).backward()
    assert mu.grad.abs().sum() > 0
    if detach:
        assert target.grad is None
    else:
        assert target.grad is not None and target.grad.abs().sum() > 0


def test_finite_and_float32_under_bf16_autocast():
    reg = MIRegressor(4, nn.Conv3d)
    x = torch.randn(6, 4, 3, 3, 3) * 50
    target = torch.randn(2, 4, 3, 3, 3) * 50
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mu = reg(x).view(2, 3, 4, 3, 3, 3)
        value = VariationalMILoss()(mu, target, reg.variance())
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert all(torch.isfinite(p.grad).all() for p in reg.parameters())


def test_shape_errors():
    loss = VariationalMILoss()
    with pytest.raises(ValueError, match="mu must be"):
        loss(torch.zeros(2, 3, 4, 5), torch.zeros(2, 5, 5), torch.ones(4))
    with pytest.raises(ValueError, match="var must be"):
        loss(torch.zeros(2, 3, 4, 5), torch.zeros(2, 4, 5), torch.ones(3))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_stage_weights_grow_linearly_and_sum_to_one(k):
    weights = mi_stage_weights(k)
    total = k * (k + 1) / 2
    assert weights == pytest.approx([j / total for j in range(1, k + 1)])
    assert sum(weights) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mi_stage_weights(0)
