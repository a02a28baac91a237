"""Seeded training: `nnUNet_seed=N nnUNetv2_train ...` seeds Python, NumPy, torch and nnU-Net's workers.

nnU-Net has no seed. Every nnunet-holder trainer (they all carry `OverridesMixin`) reads the
environment variable `nnUNet_seed` when it is built and then seeds Python's `random`, NumPy's
global generator (nnU-Net's data loader samples cases and patches with it) and torch (weight
initialisation, batchgeneratorsv2's augmentation). Each DDP rank adds its rank, so ranks draw
different batches. With augmentation workers (`nnUNet_n_proc_DA` > 0) every worker gets its own
seed derived from the run's seed; nnU-Net's non-deterministic augmenter still hands batches out in
arrival order, so only `nnUNet_n_proc_DA=0` repeats a run exactly (same loss curve, to float
rounding of the CPU kernels). Unset, nothing is seeded: nnU-Net's behaviour.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from nnunet_holder.trainers.environment import int_from_environment

SEED_VARIABLE = "nnUNet_seed"


def seed_from_environment() -> int | None:
    """The run's seed from `nnUNet_seed`, or None where it is unset or empty."""
    return int_from_environment(SEED_VARIABLE, 0, 2**31)


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def worker_seeds(seed: int, rank: int, stream: str, count: int) -> list[int]:
    """`count` distinct seeds for one rank's augmentation workers of one stream ("train"/"val")."""
    sequence = np.random.SeedSequence([seed, rank, {"train": 0, "val": 1}[stream]])
    return [int(s) for s in sequence.generate_state(count)]


@contextmanager
def seeded_augmenter_workers(seed: int, rank: int) -> Iterator[None]:
    """Within the block, nnU-Net's trainer module builds its augmenters with seeded workers.

    nnU-Net's `get_dataloaders` passes `seeds=None` (each worker seeds itself from the OS). The
    name the trainer module imported is bound to a wrapper for the call only; the first augmenter
    built is the training one, the second the validation one (nnU-Net's order).
    """
    import nnunetv2.training.nnUNetTrainer.nnUNetTrainer as trainer_module

    original = trainer_module.NonDetMultiThreadedAugmenter
    streams = iter(("train", "val"))

    @functools.wraps(original)
    def seeded(*args, num_processes: int, seeds=None, **kwargs):
        seeds = worker_seeds(seed, rank, next(streams, "val"), num_processes)
        return original(*args, num_processes=num_processes, seeds=seeds, **kwargs)

    trainer_module.NonDetMultiThreadedAugmenter = seeded
    try:
        yield
    finally:
        trainer_module.NonDetMultiThreadedAugmenter = original
