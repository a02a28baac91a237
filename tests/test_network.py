"""The modality-parallel network: folding is exact, fusion is a mean, missing modalities cost nothing."""

from __future__ import annotations

import pytest
import torch
from nnunet_holder.architectures import ModalityParallelNet

from nnunet_holder.subsets import all_subsets
from tests.helpers_net import BACKBONES, randomise_norms

M, C = 4, 3


def make_net(kind: str = "plain", width: float = 0.5, deep_supervision: bool = True, m: int = M):
    cls, kwargs = BACKBONES[kind]
    torch.manual_seed(0)
    net = ModalityParallelNet(
        cls, kwargs(), num_modalities=m, num_classes=C, width=width, deep_supervision=deep_supervision
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
