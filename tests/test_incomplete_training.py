"""Incomplete training cases: the record, the per-sample subsets of every trainer that draws, and the
networks and loss seeing nothing of a modality a case lacks.

Property tests draw many batches with random availability; the network tests change the voxels of
a missing modality and check that neither the loss nor its gradient sees it.
"""

from __future__ import annotations

import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from nnunet_holder.architectures import FeatureFusionNet, InputFusionNet, ModalityParallelNet
from nnunet_holder.trainers import ALL_TRAINERS
from nnunet_holder.trainers.baselines.modality_dropout import nnUNetTrainerModalityDropout
from nnunet_holder.trainers.holder_mi import HolderMITrainer

from nnunet_holder.availability import (
    ABSENT_KEY,
    AbsenceRecordError,
    absent_channels,
    available_mask,
    subsets_inside,
    subsets_within,
)
from nnunet_holder.losses import HolderMILoss
from nnunet_holder.subsets import all_subsets, subset_mask
from tests.helpers_net import plain_kwargs

M = 4
CHANNELS = {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
DRAWS = 400


def _random_available(rng: torch.Generator, batch: int) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """Batch keys and an absence record: each case complete or lacking a random proper subset."""
    keys, absent = [], {}
    for b in range(batch):
        key = f"case_{b}"
        keys.append(key)
        lacking = [c for c in range(M) if torch.rand((), generator=rng) < 0.4]
        if 0 < len(lacking) < M:
            absent[key] = tuple(lacking)
    return keys, absent


def test_the_record_reads_names_and_refuses_bad_entries() -> None:
    dataset = {"channel_names": CHANNELS, ABSENT_KEY: {"a": ["T1ce", "FLAIR"], "b": []}}
    assert absent_channels(dataset) == {"a": (1, 3)}
    assert absent_channels({"channel_names": CHANNELS}) == {}
    for bad, words in (
        ({"a": ["T1c"]}, "not channel names"),
        ({"a": ["T2", "T2"]}, "named twice"),
        ({"a": list(CHANNELS.values())}, "every channel is absent"),
    ):
        with pytest.raises(AbsenceRecordError, match=words) as error:
            absent_channels({"channel_names": CHANNELS, ABSENT_KEY: bad})
        assert "case a" in str(error.value)
    assert available_mask({"a": (1,)}, ["b", "c"], M) is None  # complete batch: the old path
    assert available_mask({"a": (1,)}, ["b", "a"], M).tolist() == [[1, 1, 1, 1], [1, 0, 1, 1]]


def test_subsets_within_stay_inside_each_case_and_keep_complete_cases() -> None:
    rng = torch.Generator().manual_seed(0)
    full = subset_mask(all_subsets(M), M)
    for _ in range(DRAWS):
        keys, absent = _random_available(rng, 3)
        available = available_mask(absent, keys, M)
        if available is None:
            continue
        rows = torch.randperm(len(full), generator=rng)[:5].tolist()
        subsets = full[sorted(rows) + [len(full) - 1]]
        within = subsets_within(subsets, available)
        assert (within <= available.unsqueeze(1)).all()  # nothing a case lacks
        assert (within.sum(-1) > 0).all()  # no empty subset
        assert torch.equal(within[:, -1], available)  # the full set is the case's own
        for b in range(3):
            if bool(available[b].all()):
                assert torch.equal(within[b], subsets)
        inside = subsets_inside(subsets, available)
        assert torch.equal(inside, (within == subsets.unsqueeze(0)).all(-1))


def _drawing_trainers() -> list[type]:
    return [t for t in ALL_TRAINERS if issubclass(t, (HolderMITrainer, nnUNetTrainerModalityDropout))]


def _holder_draws(cls: type, rng: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(per-sample subsets, available) of many training and validation steps of a HolderMITrainer class."""
    trainer = object.__new__(cls)
    trainer._subsets = all_subsets(M)
    trainer._all_mask = subset_mask(trainer._subsets, M)
    trainer.num_input_channels, trainer.device = M, torch.device("cpu")
    trainer.seed, trainer.current_epoch = 7, 0
    out = []
    for step in range(DRAWS // 4):
        keys, trainer._absent = _random_available(rng, 2)
        available = trainer._available({"keys": keys})
        trainer._step = step
        for drawn in (trainer._subsets_for_step(), trainer._all_mask[trainer._step_subsets("val", step)]):
            subsets = trainer._per_sample(drawn, available)
            if available is None:
                assert subsets is drawn  # complete batch: the step's own mask, unchanged
            else:
                out.append((subsets, available))
    return out


def _dropout_draws(cls: type, rng: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    trainer = object.__new__(cls)
    out = []
    for _ in range(DRAWS):
        keys, absent = _random_available(rng, 3)
        available = available_mask(absent, keys, M)
        if available is not None:
            out.append((trainer.keep_mask(3, M, available).unsqueeze(1), available))
    return out


@pytest.mark.parametrize("cls", _drawing_trainers(), ids=lambda c: c.__name__)
def test_no_kept_subset_ever_holds_a_missing_modality(cls: type) -> None:
    rng = torch.Generator().manual_seed(1)
    torch.manual_seed(2)
    draws = _holder_draws(cls, rng) if issubclass(cls, HolderMITrainer) else _dropout_draws(cls, rng)
    assert len(draws) > DRAWS // 4
    for subsets, available in draws:
        assert (subsets <= available.unsqueeze(1)).all()
        assert (subsets.sum(-1) > 0).all()


@pytest.mark.parametrize("full_set_probability", [0.0, 0.5])
def test_dropout_draws_every_subset_of_what_a_case_has_and_keeps_the_complete_stream(
    full_set_probability: float,
) -> None:
    trainer = object.__new__(nnUNetTrainerModalityDropout)
    trainer.full_set_probability = full_set_probability
    available = torch.tensor([[1.0, 0.0, 1.0, 1.0]] * 4)
    torch.manual_seed(3)
    seen = {tuple(int(v) for v in row) for _ in range(200) for row in trainer.keep_mask(4, M, available)}
    # the 7 non-empty subsets of {T1, T2, FLAIR}, each drawn; never T1ce
    assert seen == {tuple(int(c in s) for c in range(M)) for s in all_subsets(M) if 1 not in s}
    torch.manual_seed(4)
    old_stream = trainer.keep_mask(8, M)
    torch.manual_seed(4)
    assert torch.equal(trainer.keep_mask(8, M, None), old_stream)


def _network(kind: str) -> torch.nn.Module:
    cls, options = {
        "parallel": (ModalityParallelNet, {}),
        "parallel_learned": (ModalityParallelNet, {"learned_fusion": True}),
        "feature_mean": (FeatureFusionNet, {"fusion": "mean"}),
        "feature_attention": (FeatureFusionNet, {"fusion": "attention"}),
        "feature_mean_variance": (FeatureFusionNet, {"fusion": "mean_variance"}),
        "input": (InputFusionNet, {}),
        "input_availability": (InputFusionNet, {"availability_channels": True}),
    }[kind]
    torch.manual_seed(0)
    return cls(PlainConvUNet, plain_kwargs(), num_modalities=M, num_classes=3, deep_supervision=True,
               **options)


@pytest.mark.parametrize(
    "kind",
    ["parallel", "parallel_learned", "feature_mean", "feature_attention", "feature_mean_variance", "input",
     "input_availability"],
)
def test_a_missing_modality_reaches_neither_the_loss_nor_its_gradient(kind: str) -> None:
    """Sample 1 lacks T1ce: its voxels change nothing in the loss, get no gradient, and the complete
    sample's outputs equal those of the shared (S, M) mask."""
    net = _network(kind)
    subsets = subset_mask([(3,), (1, 2), (0, 1), (0, 1, 2, 3)], M)
    available = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0]])
    per_sample = subsets_within(subsets, available)
    torch.manual_seed(1)
    x = torch.randn(2, M, 16, 16, 16)
    targets = [(torch.rand(2, 3, 16, 16, 16) > 0.5).float(), (torch.rand(2, 3, 8, 8, 8) > 0.5).float()]
    loss_fn = HolderMILoss(use_sigmoid=True, ds_weights=[0.7, 0.3], lambda_kd=0.5)

    def run(inputs: torch.Tensor) -> tuple[torch.Tensor, dict, torch.Tensor]:
        inputs = inputs.clone().requires_grad_(True)
        out = net(inputs, per_sample)
        loss = loss_fn(out, targets)
        loss.backward()
        return loss.detach(), out, inputs.grad

    loss, out, grad = run(x)
    assert grad[1, 1].abs().max() == 0  # no gradient into the missing modality
    assert grad[0, 1].abs().max() > 0
    changed = x.clone()
    changed[1, 1] = torch.randn(16, 16, 16) * 5
    loss_changed, out_changed, _ = run(changed)
    assert torch.equal(loss, loss_changed)
    for key in ("mi_pred", "mi_target"):
        for a, b in zip(out[key], out_changed[key], strict=True):
            assert torch.allclose(a, b, atol=1e-6, rtol=0)
    with torch.no_grad():
        shared = net(x, subsets)
    for a, b in zip(out["logits"], shared["logits"], strict=True):
        assert torch.allclose(a[0], b[0], atol=1e-5, rtol=0)  # the complete sample: the old computation
