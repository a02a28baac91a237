"""Seeded training: `nnUNet_seed=N nnUNetv2_train ...` seeds Python, NumPy, torch and nnU-Net's workers.

nnU-Net has no seed. Every nnunet-holder trainer (they all carry `OverridesMixin`) reads the
environment variable `nnUNet_seed` when it is built and then seeds Python's `random`, NumPy's
global generator (nnU-Net's data loader samples cases and patches with it) and torch (weight
initialisation, batchgeneratorsv2's augmentation, modality dropout's masks). Each DDP rank adds
its rank, so ranks draw different batches. The subset draw of trainers that train a few modality
subsets per step is keyed by (seed, epoch, step) instead, the same on every rank
(`holder_mi.draw_step_subsets`). With augmentation workers (`nnUNet_n_proc_DA` > 0) every worker
gets its own seed derived from the run's seed; nnU-Net's non-deterministic augmenter still hands
batches out in arrival order, so only `nnUNet_n_proc_DA=0` repeats a run exactly (same loss
curve, to float rounding of the CPU kernels). Unset, nothing is seeded: nnU-Net's behaviour.

Resuming (`nnUNetv2_train ... --c`) a seeded run: every checkpoint of a seeded run holds each
rank's generator states (Python, NumPy's global, torch's CPU and, on a GPU, the rank's CUDA
device) as they were when it was written, at the end of an epoch. The resumed run restores its
rank's states at the end of nnU-Net's `on_train_start`, after the warm-up batch that nnU-Net's
`get_dataloaders` draws from each loader, so its first batch is the one the interrupted run would
have drawn next; the subset draws need no state (their key is the epoch and the step within it).
With `nnUNet_n_proc_DA=0` the resumed run therefore continues the interrupted one exactly: the
same batches, augmentations, dropout masks and subsets, the same loss curve. With
`nnUNet_n_proc_DA` > 0 the main process continues its streams (dropout masks) and the subset
draws continue, but the augmentation workers are new processes whose generators cannot be saved;
they are seeded from (seed, rank, loader, epoch resumed at), so the resumed run neither continues
nor repeats the interrupted run's cases, patches and augmentations: its workers draw new streams,
with the same seeds on every resume from that epoch. A checkpoint without the states (an unseeded
run's, or one written before they were saved) or written under another `nnUNet_seed` is resumed
with the streams the seed gives at construction, and the log says so.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from nnunet_holder.trainers.environment import int_from_environment

SEED_VARIABLE = "nnUNet_seed"

RANDOM_STATE_KEY = "nnunet_holder_random_state"
"""The checkpoint entry of a seeded run: {"seed": N, "ranks": [each rank's `random_state`]}."""


def seed_from_environment() -> int | None:
    """The run's seed from `nnUNet_seed`, or None where it is unset or empty."""
    return int_from_environment(SEED_VARIABLE, 0, 2**31)


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def random_state(device: torch.device) -> dict[str, Any]:
    """This process's generator states: Python's, NumPy's global, torch's CPU and `device`'s CUDA one.

    Plain tuples, ints and tensors only, so a checkpoint holding them also loads with torch's
    `weights_only=True`.
    """
    name, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (name, [int(k) for k in keys], int(position), int(has_gauss), float(gauss)),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_random_state(state: dict[str, Any], device: torch.device) -> None:
    """Set the generators `random_state` read; the CUDA state only where both runs are on a GPU."""
    random.setstate(state["python"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def worker_seeds(seed: int, rank: int, stream: str, count: int, start_epoch: int = 0) -> list[int]:
    """`count` distinct seeds for one rank's augmentation workers of one stream ("train"/"val").

    `start_epoch`: the epoch the run starts at (a `--c` resume's). Epoch 0 gives the seeds of the
    runs before resumes were keyed (NumPy's SeedSequence pads its entropy with zeros).
    """
    sequence = np.random.SeedSequence([seed, rank, {"train": 0, "val": 1}[stream], start_epoch])
    return [int(s) for s in sequence.generate_state(count)]


@contextmanager
def seeded_augmenter_workers(seed: int, rank: int, start_epoch: int = 0) -> Iterator[None]:
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
        seeds = worker_seeds(seed, rank, next(streams, "val"), num_processes, start_epoch)
        return original(*args, num_processes=num_processes, seeds=seeds, **kwargs)

    trainer_module.NonDetMultiThreadedAugmenter = seeded
    try:
        yield
    finally:
        trainer_module.NonDetMultiThreadedAugmenter = original
