"""The modality-parallel network: exact folding, (weighted) mean fusion, missing modalities cost nothing,
an explicit interface whose forward is a function of its inputs (and compiles without recompiling)."""

from __future__ import annotations

import pytest
import torch
from nnunet_holder.architectures import ModalityParallelNet
from nnunet_holder.architectures.modality_net import present_modalities

from nnunet_holder.losses import HolderMILoss
from nnunet_holder.subsets import all_subsets, fusion_weights, subset_mask
from tests.helpers_net import BACKBONES, randomise_norms

M, C = 4, 3
ALL = subset_mask(all_subsets(M), M)
SINGLES = subset_mask([(i,) for i in range(M)], M)


def idx(subset) -> torch.Tensor:
    return torch.tensor(list(subset), dtype=torch.long)


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
    net = make_net(kind).eval()
    x = torch.randn(2, M, 16, 16, 16)
    with torch.no_grad():
        out = net(x, SINGLES)  # the fused logits of a singleton subset are that modality's logits
        for i in range(M):
            ref = reference_backbone(net, kind, i, deep_supervision=True)
            ref_out = ref(x[:, i : i + 1])
            for scale, ref_scale in zip(out["logits"], ref_out, strict=True):
                assert (scale[:, i] - ref_scale).abs().max().item() < 1e-5


def test_fusion_is_mean_over_subset_and_skips_missing():
    net = make_net(deep_supervision=False).eval()
    x = torch.randn(1, M, 16, 16, 16)
    with torch.no_grad():
        per_modality = net.per_modality_logits(x)
        assert per_modality.shape == (1, M, C, 16, 16, 16)
        for subset in all_subsets(M):
            fused = net.predict(x, idx(subset))
            expected = per_modality[:, list(subset)].mean(1)
            assert (fused - expected).abs().max().item() < 1e-5
            assert torch.equal(net(x, available=idx(subset)), fused)


def test_a_missing_modality_does_not_leak_into_the_prediction():
    net = make_net(deep_supervision=False, learned_fusion=True).eval()
    x = torch.randn(1, M, 16, 16, 16)
    changed = x.clone()
    changed[:, [0, 2]] = torch.randn(1, 2, 16, 16, 16) * 5
    with torch.no_grad():
        assert torch.equal(net.predict(x, idx([1, 3])), net.predict(changed, idx([1, 3])))
        assert not torch.equal(net.predict(x, idx([0, 1, 3])), net.predict(changed, idx([0, 1, 3])))


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
        train_fused = net(x, ALL)["logits"][0]
        one_pass = net.subset_logits(x, ALL)
        logits = net.per_modality_logits(x)
    for s, subset in enumerate(all_subsets(M)):
        with torch.no_grad():
            fused = net.predict(x, idx(subset))
        assert (fused - train_fused[:, s]).abs().max().item() < 1e-5
        assert (fused - one_pass[:, s]).abs().max().item() < 1e-5
        if len(subset) > 1:
            assert (fused - logits[:, list(subset)].mean(1)).abs().max().item() > 1e-3
    net.train()
    out = net(torch.randn(2, M, 16, 16, 16), ALL)
    targets = [torch.rand(2, C, *o.shape[3:]) > 0.5 for o in out["logits"]]
    HolderMILoss(use_sigmoid=True, ds_weights=[0.7, 0.3]).forward(out, targets).backward()
    assert net.fusion_logits.grad is not None and net.fusion_logits.grad.abs().sum() > 0
    assert make_net().fusion_logits is None  # the plain mean has nothing to learn


def test_one_available_modality_runs_backbone_once():
    net = make_net(deep_supervision=False).eval()
    seen = []
    net.backbone.encoder.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    with torch.no_grad():
        net(torch.randn(3, M, 16, 16, 16), available=idx([2]))
    assert seen == [3]  # batch 3 x one modality
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
        assert torch.equal(net(x), net.predict(x, idx([0, 2])))
    assert present_modalities(x).tolist() == [0, 2]
    assert present_modalities(torch.zeros(1, M, 4, 4, 4)).tolist() == list(range(M))


def test_wrong_channel_count_is_refused():
    net = make_net()
    with pytest.raises(ValueError, match="expected 4 input channels.*shifts"):
        net(torch.randn(1, 3, 16, 16, 16))


def test_the_output_depends_on_the_arguments_not_on_train_or_eval_mode():
    # a validation step runs in eval mode and needs the training output (deep supervision on or off)
    for deep_supervision in (True, False):
        net = make_net(deep_supervision=deep_supervision).eval()
        out = net(torch.randn(2, M, 16, 16, 16), ALL)
        assert isinstance(out, dict) and len(out["logits"]) == (2 if deep_supervision else 1)
        net.train()
        assert net(torch.randn(2, M, 16, 16, 16)).shape == (2, C, 16, 16, 16)


def test_width_and_deep_supervision_switch():
    net = make_net(width=0.5)
    assert list(net.backbone.encoder.output_channels) == [4, 8, 16]
    net.train()
    out = net(torch.randn(2, M, 16, 16, 16), ALL)
    S = 2**M - 1
    assert [tuple(t.shape) for t in out["logits"]] == [(2, S, C, 16, 16, 16), (2, S, C, 8, 8, 8)]
    assert out["mi_pred"][0].shape == (2, 2**M - 1, 16, 4, 4, 4)
    net.decoder.deep_supervision = False  # what nnU-Net's set_deep_supervision_enabled does
    net.eval()
    assert net(torch.randn(2, M, 16, 16, 16)).shape == (2, C, 16, 16, 16)


def test_two_dimensional_plans_and_three_modalities():
    cls, _ = BACKBONES["plain"]
    from tests.helpers_net import plain_kwargs

    net = ModalityParallelNet(cls, plain_kwargs(2), num_modalities=3, num_classes=2)
    out = net(torch.randn(2, 3, 16, 16), subset_mask(all_subsets(3), 3))
    assert out["logits"][0].shape == (2, 7, 2, 16, 16)
    assert out["subset_mask"].shape == (7, 3)


def test_batchnorm_plans_are_refused():
    cls, kwargs = BACKBONES["plain"]
    kw = kwargs()
    kw["norm_op"] = torch.nn.BatchNorm3d
    with pytest.raises(ValueError, match="BatchNorm3d is not supported: batch statistics would mix"):
        ModalityParallelNet(cls, kw, num_modalities=M, num_classes=C)


def test_compiled_network_does_not_recompile_across_subsets_and_available_sets():
    """torch.compile guards: new subset values or available sets must reuse the compiled graphs.

    The backend is "eager" (dynamo only): recompilations are decided by dynamo's guards, the
    same for every backend, and this keeps the test fast on a CPU.
    """
    torch._dynamo.reset()
    net = make_net(deep_supervision=True)
    compiled = torch.compile(net, backend="eager")
    x = torch.randn(2, M, 16, 16, 16)
    g = torch.Generator().manual_seed(0)
    frames = torch._dynamo.utils.counters["frames"]

    def sampled(k: int) -> torch.Tensor:
        rows = torch.randperm(len(ALL) - 1, generator=g)[: k - 1].sort().values.tolist()
        return ALL[rows + [len(ALL) - 1]]

    for _ in range(2):  # warm-up: one graph for each schedule's mask shape
        for mask in (ALL, sampled(4)):
            sum(o.sum() for o in compiled(x, mask)["logits"]).backward()
    warm = frames["ok"]
    for _ in range(3):  # new subset draws every step, both schedules
        for mask in (ALL, sampled(4)):
            sum(o.sum() for o in compiled(x, mask)["logits"]).backward()
    assert frames["ok"] == warm, "training steps recompiled"

    net.eval()
    net.decoder.deep_supervision = False
    with torch.no_grad():
        for k in range(1, M + 1):  # warm-up: the available set's size becomes a dynamic dimension
            compiled(x, available=idx(all_subsets(M)[[len(s) for s in all_subsets(M)].index(k)]))
        warm = frames["ok"]
        for subset in all_subsets(M):
            compiled(x, available=idx(subset))
    assert frames["ok"] == warm, "new available sets recompiled"
    torch._dynamo.reset()
