"""The input-fusion network: its three explicit outputs agree, a missing modality's input never
reaches a subset without it, the MI teacher is the full set's features whether or not the step
trains the full set, one pass per image whatever k, both plans backbones build, the optional
availability channels tell an absent modality from a zero image, and the optional subset norms
start as the plans' norms and give each subset an affine of its own."""

from __future__ import annotations

import pytest
import torch
from nnunet_holder.architectures import InputFusionNet, ModalityNorm

from nnunet_holder.subsets import all_subsets, subset_mask
from tests.helpers_net import BACKBONES, assert_explicit_outputs_agree

M, C = 4, 3
SUBSETS = all_subsets(M)
ALL = subset_mask(SUBSETS, M)


def make_net(
    kind: str = "plain", availability_channels: bool = False, subset_norms: bool = False
) -> InputFusionNet:
    cls, kwargs = BACKBONES[kind]
    torch.manual_seed(0)
    return InputFusionNet(
        cls, kwargs(), num_modalities=M, num_classes=C, width=1.0,
        availability_channels=availability_channels, subset_norms=subset_norms,
    )


def randomize_subset_affines(net: InputFusionNet) -> None:
    """Give every subset's affine its own values (they start equal: weight 1, bias 0)."""
    with torch.no_grad():
        for norm in (m for m in net.modules() if isinstance(m, ModalityNorm)):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0, 0.5)


@pytest.mark.parametrize(
    ("kind", "availability_channels", "subset_norms"),
    [("plain", False, False), ("resenc", False, False), ("plain", True, False), ("plain", False, True),
     ("resenc", False, True)],
)
def test_prediction_subset_logits_and_training_output_agree(kind, availability_channels, subset_norms):
    net = make_net(kind, availability_channels, subset_norms).eval()
    randomize_subset_affines(net)
    assert_explicit_outputs_agree(net, SUBSETS, C)


def test_the_plans_own_network_with_its_own_norms():
    net = make_net()
    assert not any(isinstance(m, ModalityNorm) for m in net.modules())
    assert net.backbone.encoder.stages[0][0].convs[0].conv.in_channels == M
    assert not InputFusionNet.uses_modality_norms


def test_subset_norms_start_as_the_plans_norms_and_give_each_subset_its_own_affine():
    """At initialisation (every affine 1, 0) the subset norms compute what the plans' norms do;
    once the affines differ, a subset's logits follow its own affine and no other subset's."""
    x = torch.randn(2, M, 16, 16, 16)
    plain, grouped = make_net().eval(), make_net(subset_norms=True).eval()
    norms = [m for m in grouped.modules() if isinstance(m, ModalityNorm)]
    assert norms and all(n.weight.shape[0] == len(SUBSETS) for n in norms)
    assert sum(p.numel() for p in grouped.parameters()) - sum(p.numel() for p in plain.parameters()) == sum(
        (len(SUBSETS) - 1) * (n.weight.numel() + n.bias.numel()) // len(SUBSETS) for n in norms
    )
    with torch.no_grad():
        assert torch.allclose(plain.subset_logits(x, ALL), grouped.subset_logits(x, ALL), atol=1e-5)
        before = grouped.subset_logits(x, ALL)
        code = sum(2**m for m in SUBSETS[5]) - 1
        for norm in norms:
            norm.bias[code] += 0.3
        after = grouped.subset_logits(x, ALL)
    changed = [s for s in range(len(SUBSETS)) if not torch.allclose(before[:, s], after[:, s])]
    assert changed == [5]


@pytest.mark.parametrize(
    ("availability_channels", "subset_norms"), [(False, False), (True, False), (False, True)]
)
def test_nothing_of_a_missing_modality_reaches_the_output(availability_channels, subset_norms):
    net = make_net(availability_channels=availability_channels, subset_norms=subset_norms).eval()
    randomize_subset_affines(net)
    x = torch.randn(2, M, 16, 16, 16)
    changed = x.clone()
    changed[:, 2] = torch.randn(2, 16, 16, 16) * 10
    without_2 = [s for s, subset in enumerate(SUBSETS) if 2 not in subset]
    with torch.no_grad():
        a, b = net.subset_logits(x, ALL), net.subset_logits(changed, ALL)
        assert torch.equal(a[:, without_2], b[:, without_2])
        assert not torch.equal(a[:, -1], b[:, -1])
        available = torch.tensor([0, 1, 3])
        assert torch.equal(net.predict(x, available), net.predict(changed, available))


def test_the_mi_teacher_is_the_full_sets_features_even_when_the_step_skips_the_full_set():
    net = make_net().train()
    x = torch.randn(2, M, 16, 16, 16)
    partial = ALL[[0, 5]]
    with torch.no_grad():
        with_full = net(x, torch.cat([partial, ALL[-1:]]))
        without_full = net(x, partial)
    assert [t.shape[1] for t in without_full["logits"]] == [2] * len(without_full["logits"])
    for a, b in zip(with_full["mi_target"], without_full["mi_target"], strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    for a, b in zip(with_full["logits"], without_full["logits"], strict=True):
        assert torch.allclose(a[:, :2], b, atol=1e-5)
    for a, b in zip(with_full["mi_pred"], without_full["mi_pred"], strict=True):
        assert torch.allclose(a[:, :2], b, atol=1e-5)


def test_one_pass_per_image_whatever_the_available_modalities():
    net = make_net()
    assert [net.image_passes(k) for k in range(1, M + 1)] == [1, 1, 1, 1]
    assert net.image_passes(M, subsets=15) == 15


def test_the_availability_channels_tell_an_absent_modality_from_a_zero_image():
    """Without them a subset and the full set with that modality's image all zeros are the same
    input; with them the network sees which modalities the subset has."""
    x = torch.randn(2, M, 16, 16, 16)
    x[:, 3] = 0
    available = torch.tensor([0, 1, 2])
    with torch.no_grad():
        blind = make_net().eval()
        assert torch.equal(blind.predict(x, available), blind.predict(x, torch.arange(M)))
        told = make_net(availability_channels=True).eval()
        assert told.backbone.encoder.stages[0][0].convs[0].conv.in_channels == 2 * M
        assert not torch.allclose(told.predict(x, available), told.predict(x, torch.arange(M)))
