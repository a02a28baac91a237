"""HolderMITrainer's validation step: subsets segmented in groups, a loss weighted as training's.

Trainers are built in-process from the tiny dataset's real plans (`get_trainer_from_args`, as
`nnUNetv2_train` builds them) and validated on a batch of nnU-Net's own validation loader.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nnunetv2.run.run_training import get_trainer_from_args

from nnunet_holder.subsets import all_subsets
from tests.conftest import DATASET_ID

TRAINERS = (
    "HolderMITrainer_smoke",  # every subset in one step: the loss's pass counts them all
    "HolderMITrainer_featureFusion_smoke",  # 4 subsets per step
    "HolderMITrainer_inputFusion_smoke",  # 2 subsets per step
)


def _trainer(name: str):
    trainer = get_trainer_from_args(str(DATASET_ID), "3d_fullres", 0, name, device=torch.device("cpu"))
    trainer.initialize()
    trainer.network.eval()
    return trainer


def _validate(trainer, batch: dict, per_pass: int | None) -> dict:
    trainer.validation_subsets_per_pass = per_pass
    trainer._val_step = 0  # the same draw for the loss in every call
    with torch.no_grad():
        return trainer.validation_step(batch)


def _all_at_once(trainer, batch: dict) -> list[np.ndarray]:
    """The counts of one network pass over every subset (what validation did before groups)."""
    with torch.no_grad():
        logits = trainer.network(batch["data"], trainer._all_mask)["logits"][0]
    counts = trainer._subset_counts(logits, batch["target"][0])
    return [np.stack([c[j] for c in counts]) for j in range(3)]


@pytest.mark.parametrize("name", TRAINERS)
def test_grouped_subsets_give_the_counts_of_one_pass_over_all(in_nnunet_env, name):
    trainer = _trainer(name)
    _, dl_val = trainer.get_dataloaders()
    batch = next(dl_val)
    reference = _all_at_once(trainer, batch)
    num = len(all_subsets(4))
    for per_pass in (1, 4, None, num):
        out = _validate(trainer, batch, per_pass)
        for key, expected in zip(("tp_subsets", "fp_subsets", "fn_subsets"), reference, strict=True):
            assert out[key].shape == (num, 3)
            np.testing.assert_array_equal(out[key], expected, err_msg=f"{key}, {per_pass} per pass")
        assert (out["tp_hard"] == reference[0][-1]).all()  # nnU-Net's pseudo-Dice: the full set
    assert reference[0].sum() > 0  # counts of something, not of empty maps


@pytest.mark.parametrize("name", ["HolderMITrainer_featureFusion_smoke", "HolderMITrainer_inputFusion_smoke"])
def test_validation_passes_hold_no_more_subsets_than_a_training_step(in_nnunet_env, name):
    trainer = _trainer(name)
    k = trainer.subsets_per_step
    net = trainer.parallel_network()
    passes = []  # subsets per network pass, whichever entry point
    for method in ("training_output", "subset_logits"):
        original = getattr(net, method)

        def record(x, subsets, _original=original):
            passes.append(subsets.shape[0])
            return _original(x, subsets)

        setattr(net, method, record)
    seen = []
    loss = trainer.loss
    trainer.loss = lambda output, target: seen.append(output["subset_mask"]) or loss(output, target)
    _, dl_val = trainer.get_dataloaders()
    _validate(trainer, next(dl_val), None)
    assert max(passes) <= k and sum(passes) == len(all_subsets(4))  # each subset segmented once
    # the loss sees what a training step sees: k subsets, the full set among them, last
    (mask,) = seen
    assert mask.shape[0] == k and bool(mask[-1].all())
