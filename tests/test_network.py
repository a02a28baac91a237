"""The modality-parallel network: exact folding, (weighted) mean fusion, missing modalities cost nothing."""

from __future__ import annotations

import pytest
import torch
from nnunet_holder.architectures import ModalityParallelNet

from nnunet_holder.losses import HolderMILoss
from nnunet_holder.subsets import all_subsets, fusion_weights, subset_mask
from tests.helpers_net import BACKBONES, randomise_norms

M, C = 4, 3


def make_net(
    kind: str = "plain", width: float = 0.5, deep_supervision: bool = True, m: int = M, learned_fusion=False
):
    cls, kwargs = BACKBONES[kind]
    torch.manual_seed(0)
    net = ModalityParallelNet(
        cls,
        kwargs(),
        num_modalities=m,
        num_classes=C,
        width=width,
        deep_supervision=deep_supervision,
        learned_fusion=learned_fusion,
    )
    randomise_norms(net)
    return net


def reference_backbone(net: ModalityParallelNet, kind: str, modality: int, deep_supervision: bool):
    """The plain dynamic-network-architectures backbone with modality `modality`'s norm parameters."""
    cls, kwargs = BACKBONES[kind]
    kw = kwargs()
    kw["features_per_stage"] = [round(f * net.width) for f in kw["features_per_stage"]]
    ref = cls(input_channels=1, num_classes=C, deep_supervision=deep_supervision, **kw)
    ref_shapes = {k: v.shape for k, v in ref.state_dict().items()}
    state = {}
    for key, value in net.backbone.state_dict().items():
        # per-modality affines are (M, C) where the plain norm has (C,)
        state[key] = value[modality] if value.shape != ref_shapes[key] else value
    ref.load_state_dict(state)
    return ref.eval()


@pytest.mark.parametrize("kind", ["plain", "resenc"])
def test_folding_is_exact(kind):
    net = make_net(kind).eval()  # eval: deep supervision on keeps the all-modality output
    x = torch.randn(2, M, 16, 16, 16)
    with torch.no_grad():
        out = net(x)
        for i in range(M):
            ref = reference_backbone(net, kind, i, deep_supervision=True)
            ref_out = ref(x[:, i : i + 1])
            for scale, ref_scale in zip(out["logits"], ref_out, strict=True):
                assert (scale[:, i] - ref_scale).abs().max().item() < 1e-5


def test_fusion_is_mean_over_subset_and_skips_missing():
    net = make_net(deep_supervision=False).eval()
    x = torch.randn(1, M, 16, 16, 16)
    net.output_per_modality = True
    with torch.no_grad():
        per_modality = net(x).view(1, M, C, 16, 16, 16)
    net.output_per_modality = False
    for subset in all_subsets(M):
        net.set_available(subset)
        with torch.no_grad():
            fused = net(x)
        expected = per_modality[:, list(subset)].mean(1)
        assert (fused - expected).abs().max().item() < 1e-5


def test_fusion_weights_properties():
    mask = subset_mask(all_subsets(M), M)
    g = torch.Generator().manual_seed(1)
    beta = torch.randn(M, C, generator=g) * 3
    w = fusion_weights(mask, beta)
    assert w.shape == (len(mask), M, C) and (w >= 0).all()
    assert torch.allclose(w.sum(dim=1), torch.ones(len(mask), C))
    assert (w[mask == 0] == 0).all()  # a missing modality never contributes
    # a per-class shift of β changes nothing; β = 0 is the plain mean
    assert torch.allclose(fusion_weights(mask, beta + torch.randn(1, C, generator=g) * 50), w, atol=1e-6)
    plain = fusion_weights(mask, torch.zeros(M, C))
    assert torch.allclose(plain, fusion_weights(mask).unsqueeze(-1).expand_as(plain))
    # single-modality subsets ignore the weights
    singles = mask.sum(1) == 1
    assert torch.equal(w[singles], mask[singles].unsqueeze(-1).expand(-1, -1, C))
    with pytest.raises(ValueError, match="log_weights must be"):
        fusion_weights(mask, torch.zeros(M + 1, C))


def test_learned_fusion_inference_matches_the_training_fusion_and_learns():
    net = make_net(learned_fusion=True)
    with torch.no_grad():
        net.fusion_logits.copy_(torch.randn(M, C, generator=torch.Generator().manual_seed(2)))
    x = torch.randn(1, M, 16, 16, 16)
    net.eval()
    with torch.no_grad():
        train_out = net(x)  # eval with deep supervision on: the training dict
    logits, weights = train_out["logits"][0], train_out["fusion"]
    net.decoder.deep_supervision = False
    for s, subset in enumerate(all_subsets(M)):
        net.set_available(subset)
        with torch.no_grad():
            fused = net(x)
        expected = torch.einsum("mc,bmc...->bc...", weights[s], logits)
        assert (fused - expected).abs().max().item() < 1e-5
        if len(subset) > 1:
            assert (fused - logits[:, list(subset)].mean(1)).abs().max().item() > 1e-3
    net.set_available(None)
    net.decoder.deep_supervision = True
    net.train()
    out = net(torch.randn(2, M, 16, 16, 16))
    targets = [torch.rand(2, C, *o.shape[3:]) > 0.5 for o in out["logits"]]
    HolderMILoss(M, use_sigmoid=True, ds_weights=[0.7, 0.3]).forward(out, targets).backward()
    assert net.fusion_logits.grad is not None and net.fusion_logits.grad.abs().sum() > 0
    assert make_net().fusion_logits is None  # the plain mean has nothing to learn


def test_one_available_modality_runs_backbone_once():
    net = make_net(deep_supervision=False).eval()
    seen = []
    net.backbone.encoder.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    net.set_available([2])
    with torch.no_grad():
        net(torch.randn(3, M, 16, 16, 16))
    assert seen == [3]  # batch 3 x one modality
    net.set_available(None)
    seen.clear()
    with torch.no_grad():
        net(torch.randn(3, M, 16, 16, 16))
    assert seen == [3 * M]


def test_zero_channel_fallback_equals_explicit_availability():
    net = make_net(deep_supervision=False).eval()
    x = torch.randn(1, M, 16, 16, 16)
    x[:, 1] = 0
    x[:, 3] = 0
    with torch.no_grad():
        implicit = net(x)
        net.set_available([0, 2])
        explicit = net(x)
    assert torch.equal(implicit, explicit)
    net.set_available(None)
    assert net.available_modalities(torch.zeros(1, M, 4, 4, 4)) == tuple(range(M))


def test_wrong_channel_count_is_refused():
    net = make_net()
    with pytest.raises(ValueError, match="expected 4 input channels.*shifts"):
        net(torch.randn(1, 3, 16, 16, 16))


def test_width_and_deep_supervision_switch():
    net = make_net(width=0.5)
    assert list(net.backbone.encoder.output_channels) == [4, 8, 16]
    net.train()
    out = net(torch.randn(2, M, 16, 16, 16))
    assert [tuple(t.shape) for t in out["logits"]] == [(2, M, C, 16, 16, 16), (2, M, C, 8, 8, 8)]
    assert out["mi_pred"][0].shape == (2, 2**M - 1, 16, 4, 4, 4)
    net.decoder.deep_supervision = False  # what nnU-Net's set_deep_supervision_enabled does
    net.eval()
    assert net(torch.randn(2, M, 16, 16, 16)).shape == (2, C, 16, 16, 16)


def test_two_dimensional_plans_and_three_modalities():
    cls, kwargs = BACKBONES["plain"]
    from tests.helpers_net import plain_kwargs

    net = ModalityParallelNet(cls, plain_kwargs(2), num_modalities=3, num_classes=2)
    out = net(torch.randn(2, 3, 16, 16))
    assert out["logits"][0].shape == (2, 3, 2, 16, 16)
    assert out["subset_mask"].shape == (7, 3)
