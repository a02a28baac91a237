"""The feature-fusion network and its operators: properties of each operator (modality order, a
subset of one, nothing leaks from a missing modality), the three explicit outputs agree, the cost
follows the available modalities, every parameter learns, both plans backbones build."""

from __future__ import annotations

import pytest
import torch
from nnunet_holder.architectures import FeatureFusionNet, ModalityNorm
from nnunet_holder.architectures.fusion import FEATURE_FUSIONS, build_feature_fusion
from torch import nn

from nnunet_holder.losses import HolderMILoss
from nnunet_holder.subsets import all_subsets, subset_mask
from tests.helpers_net import BACKBONES, assert_explicit_outputs_agree, plain_kwargs, randomise_norms

M, C, F = 4, 3, 5
SUBSETS = all_subsets(M)
ALL = subset_mask(SUBSETS, M)
OPS = list(FEATURE_FUSIONS)


def idx(subset) -> torch.Tensor:
    return torch.tensor(list(subset), dtype=torch.long)


def make_op(name: str) -> nn.Module:
    torch.manual_seed(1)
    op = build_feature_fusion(name, F, nn.Conv3d)
    with torch.no_grad():  # away from the mean they start at, so the properties are not trivial
        for p in op.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return op


def make_net(fusion: str, kind: str = "plain", deep_supervision: bool = True, m: int = M) -> FeatureFusionNet:
    cls, kwargs = BACKBONES[kind]
    torch.manual_seed(0)
    net = FeatureFusionNet(cls, kwargs(), num_modalities=m, num_classes=C, deep_supervision=deep_supervision,
                           fusion=fusion)
    randomise_norms(net)
    with torch.no_grad():
        for op in net.fusions:
            for p in op.parameters():
                p.add_(torch.randn_like(p) * 0.3)
    return net


@pytest.mark.parametrize("name", OPS)
def test_operator_is_invariant_to_the_order_of_the_modalities(name):
    op = make_op(name)
    feats = torch.randn(2, M, F, 4, 5, 3)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        assert torch.allclose(op(feats, ALL), op(feats[:, perm], ALL[:, perm]), atol=1e-5)


@pytest.mark.parametrize("name", OPS)
def test_a_subset_of_one_is_that_modalitys_features(name):
    op = make_op(name)
    feats = torch.randn(2, M, F, 4, 5, 3)
    singles = subset_mask([(i,) for i in range(M)], M)
    with torch.no_grad():
        out = op(feats, singles)
        if name == "mean_variance":  # HeMIS: the projection of [f, variance 0]
            expected = op.project(torch.cat((feats, torch.zeros_like(feats)), 2).flatten(0, 1)).view_as(feats)
            assert torch.allclose(out, expected, atol=1e-5)
        else:
            assert torch.equal(out, feats)


@pytest.mark.parametrize("name", OPS)
def test_nothing_leaks_from_a_missing_modality_into_the_operator(name):
    op = make_op(name)
    feats = torch.randn(2, M, F, 4, 5, 3)
    changed = feats.clone()
    changed[:, 0] = torch.randn(2, F, 4, 5, 3) * 10
    without_0 = [s for s, subset in enumerate(SUBSETS) if 0 not in subset]
    with torch.no_grad():
        a, b = op(feats, ALL), op(changed, ALL)
    assert torch.equal(a[:, without_0], b[:, without_0])
    assert not torch.equal(a[:, -1], b[:, -1])


@pytest.mark.parametrize("name", OPS)
def test_available_features_alone_equal_the_masked_call(name):
    """What prediction relies on: only the k available feature maps, a (1, k) mask of ones."""
    op = make_op(name)
    feats = torch.randn(2, M, F, 4, 5, 3)
    with torch.no_grad():
        full = op(feats, ALL)
        for s, subset in enumerate(SUBSETS):
            alone = op(feats[:, list(subset)], torch.ones(1, len(subset)))[:, 0]
            assert torch.allclose(alone, full[:, s], atol=1e-5)


@pytest.mark.parametrize("name", ["mean_variance", "attention"])
def test_learned_operators_start_as_the_mean(name):
    op = build_feature_fusion(name, F, nn.Conv3d)
    feats = torch.randn(2, M, F, 4, 5, 3)
    with torch.no_grad():
        mean = build_feature_fusion("mean", F, nn.Conv3d)(feats, ALL)
        assert torch.allclose(op(feats, ALL), mean, atol=1e-5)


@pytest.mark.parametrize("kind", ["plain", "resenc"])
@pytest.mark.parametrize("fusion", OPS)
def test_prediction_subset_logits_and_training_output_agree(kind, fusion):
    assert_explicit_outputs_agree(make_net(fusion, kind).eval(), SUBSETS, C)


@pytest.mark.parametrize("fusion", OPS)
def test_a_missing_modality_does_not_leak_into_the_network(fusion):
    net = make_net(fusion, deep_supervision=False).eval()
    x = torch.randn(1, M, 16, 16, 16)
    changed = x.clone()
    changed[:, [0, 2]] = torch.randn(1, 2, 16, 16, 16) * 5
    without = [s for s, subset in enumerate(SUBSETS) if 0 not in subset and 2 not in subset]
    with torch.no_grad():
        assert torch.equal(net.predict(x, idx([1, 3])), net.predict(changed, idx([1, 3])))
        assert not torch.equal(net.predict(x, idx([0, 1, 3])), net.predict(changed, idx([0, 1, 3])))
        a, b = net.subset_logits(x, ALL), net.subset_logits(changed, ALL)
        assert torch.equal(a[:, without], b[:, without])
        ta, tb = net(x, ALL)["logits"][0], net(changed, ALL)["logits"][0]
        assert torch.equal(ta[:, without], tb[:, without])


def test_k_encoder_passes_and_one_decoder_pass():
    net = make_net("attention", deep_supervision=False).eval()
    seen = {"encoder": [], "decoder": []}
    net.encoder.register_forward_hook(lambda mod, inp, out: seen["encoder"].append(inp[0].shape[0]))
    net.decoder.register_forward_hook(lambda mod, inp, out: seen["decoder"].append(inp[0][-1].shape[0]))
    with torch.no_grad():
        net(torch.randn(3, M, 16, 16, 16), available=idx([2]))
        net(torch.randn(3, M, 16, 16, 16), available=idx([0, 1, 3]))
    assert seen == {"encoder": [3, 9], "decoder": [3, 3]}


@pytest.mark.parametrize("fusion", OPS)
def test_every_parameter_gets_a_gradient(fusion):
    net = make_net(fusion).train()
    out = net(torch.randn(2, M, 16, 16, 16), ALL[[0, 5, 11, 14]])
    assert [tuple(t.shape) for t in out["logits"]] == [(2, 4, C, 16, 16, 16), (2, 4, C, 8, 8, 8)]
    assert out["mi_pred"][0].shape == (2, 4, 16, 4, 4, 4) and out["mi_target"][0].shape == (2, 16, 4, 4, 4)
    targets = [torch.rand(2, C, *o.shape[3:]) > 0.5 for o in out["logits"]]
    HolderMILoss(use_sigmoid=True, ds_weights=[0.7, 0.3]).forward(out, targets).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_decoder_uses_the_plans_norm_and_deep_supervision_switches():
    net = make_net("mean")
    kinds = (nn.InstanceNorm3d, ModalityNorm)
    norms = [type(m) for m in net.decoder.stages.modules() if isinstance(m, kinds)]
    assert norms and set(norms) == {nn.InstanceNorm3d}
    assert any(isinstance(m, ModalityNorm) for m in net.encoder.modules())
    net.decoder.deep_supervision = False
    net.eval()
    assert net(torch.randn(1, M, 16, 16, 16)).shape == (1, C, 16, 16, 16)


def test_two_dimensional_plans_three_modalities_and_bad_input():
    cls, _ = BACKBONES["plain"]
    net = FeatureFusionNet(cls, plain_kwargs(2), num_modalities=3, num_classes=2, fusion="mean_variance")
    out = net(torch.randn(2, 3, 16, 16), subset_mask(all_subsets(3), 3))
    assert out["logits"][0].shape == (2, 7, 2, 16, 16)
    with pytest.raises(ValueError, match="unknown feature fusion"):
        FeatureFusionNet(cls, plain_kwargs(2), num_modalities=3, num_classes=2, fusion="max")
    with pytest.raises(ValueError, match="at least one modality"):
        net(torch.randn(2, 3, 16, 16), torch.tensor([[1.0, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="expected 3 input channels"):
        net(torch.randn(2, 4, 16, 16))
