"""Class-level hyperparameter overrides for nnU-Net trainers, so a variant is one line.

nnU-Net sets its hyperparameters (num_epochs, initial_lr, ...) as instance attributes inside
`nnUNetTrainer.__init__`, and its own variants repeat a constructor to change them. Here a
variant declares `overrides = {...}`; the mixin applies the overrides of every class in the MRO,
base first, after nnU-Net's constructor. The constructor keeps nnU-Net's exact signature
because nnU-Net records its arguments by name for checkpoints and DDP workers. The mixin also
seeds the run where `nnUNet_seed` is set and checkpoints the generators' states so that `--c`
continues a seeded run (`trainers/seeding.py`), so every trainer of the project is seeded and
resumed the same way; it sets the CPU threads where `nnUNet_torch_threads` is set
(`trainers/cpu_threads.py`), can thin nnU-Net's per-epoch progress.png (`plot_every`), and
writes the subset validation table after nnU-Net's final validation
(`nnunet_holder/evaluate/validation.py`), which `predict` reads for its expected Dice.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import torch
from nnunet_holder.trainers.cpu_threads import THREADS_VARIABLE, threads_from_environment
from nnunet_holder.trainers.seeding import (
    RANDOM_STATE_KEY,
    SEED_VARIABLE,
    random_state,
    restore_random_state,
    seed_everything,
    seed_from_environment,
    seeded_augmenter_workers,
)
from torch import distributed as dist


class OverridesMixin:
    """Put before the nnU-Net trainer class in the bases; set `overrides` in subclasses."""

    overrides: ClassVar[dict[str, Any]] = {}
    plot_every: int = 1
    """Draw progress.png every `plot_every` epochs and at the last (nnU-Net: every epoch). The plot
    is a 3000x5400-pixel figure whose drawing costs as much as an epoch of the CPU experiment scale;
    it does not touch the training (no random numbers)."""

    @classmethod
    def merged_overrides(cls) -> dict[str, Any]:
        """The `overrides` of every class in the MRO, base first: what the constructor applies."""
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("overrides", {}))
        return merged

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = torch.device("cuda"),  # noqa: B008 (nnU-Net's own default)
    ) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        for name, value in self.merged_overrides().items():
            setattr(self, name, value)
        if self.plot_every > 1:
            self.logger = ThinnedProgressPlot(self.logger, self)
        threads = threads_from_environment()
        if threads is not None and self.device.type == "cpu":
            torch.set_num_threads(threads)
            self.print_to_log_file(f"{THREADS_VARIABLE}={threads}: torch uses {threads} CPU thread(s)")
        self.seed = seed_from_environment()
        if self.seed is not None:
            # before `initialize` builds the network: the weights are drawn from the seeded torch
            seed_everything(self.seed + self.local_rank)
            self.print_to_log_file(
                f"{SEED_VARIABLE}={self.seed} (rank {self.local_rank} seeded with "
                f"{self.seed + self.local_rank})"
            )
        self._resume_random_state: tuple[str, dict | None] | None = None  # (checkpoint, its entry)

    def get_dataloaders(self):  # noqa: ANN201 (nnU-Net's signature)
        if self.seed is None:
            return super().get_dataloaders()
        with seeded_augmenter_workers(self.seed, self.local_rank, self.current_epoch):
            return super().get_dataloaders()

    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint; a seeded run's also holds every rank's generator states (seeding.py).

        Under DDP every rank must call it, as nnU-Net's training loop does: the states are gathered.
        """
        if self.seed is None:
            super().save_checkpoint(filename)
            return
        states = [random_state(self.device)]
        if self.is_ddp:
            states = [None] * dist.get_world_size()
            dist.all_gather_object(states, random_state(self.device))
        super().save_checkpoint(filename)
        if self.local_rank != 0 or self.disable_checkpointing:
            return
        # nnU-Net builds and writes its dict in one method: its file is read back (the tensors
        # mapped, not copied) and written again with one more entry, through a temporary file
        checkpoint = torch.load(filename, map_location="cpu", mmap=True, weights_only=False)
        checkpoint[RANDOM_STATE_KEY] = {"seed": self.seed, "ranks": states}
        partial = f"{filename}.partial"
        torch.save(checkpoint, partial)
        os.replace(partial, filename)

    def load_checkpoint(self, filename_or_checkpoint: dict | str) -> None:
        """nnU-Net's; a seeded run keeps the checkpoint's generator states for `on_train_start`.

        nnU-Net 2.8.1 takes a path here (given a dict, its own code stops with a NameError).
        """
        super().load_checkpoint(filename_or_checkpoint)
        if self.seed is not None and isinstance(filename_or_checkpoint, str):
            saved = torch.load(filename_or_checkpoint, map_location="cpu", mmap=True, weights_only=False)
            self._resume_random_state = (filename_or_checkpoint, saved.get(RANDOM_STATE_KEY))

    def on_train_start(self) -> None:
        """nnU-Net's; then a resumed seeded run continues the generators of the run it resumes."""
        super().on_train_start()
        if self._resume_random_state is None:
            return
        (filename, saved), self._resume_random_state = self._resume_random_state, None
        restart = f"the random streams are those {SEED_VARIABLE}={self.seed} gives a new run"
        if saved is None:
            why = "it holds no generator states (an unseeded run's, or written before they were saved)"
        elif saved["seed"] != self.seed:
            why = f"it was written under {SEED_VARIABLE}={saved['seed']}"
        elif self.local_rank >= len(saved["ranks"]):
            why = f"it was written by {len(saved['ranks'])} rank(s), this is rank {self.local_rank}"
        else:
            restore_random_state(saved["ranks"][self.local_rank], self.device)
            self.print_to_log_file(
                f"{SEED_VARIABLE}={self.seed}: the random streams continue from {filename} "
                f"(rank {self.local_rank}, epoch {self.current_epoch})"
            )
            return
        self.print_to_log_file(f"resuming from {filename}: {why}; {restart}")

    def perform_actual_validation(self, save_probabilities: bool = False) -> None:
        """nnU-Net's final validation, then every modality subset of the same cases
        (`validation/subset_table.*`, `subset_metrics_per_case.csv`; a network that is not
        modality-parallel gets the absent channels zero-filled, one pass per subset)."""
        from nnunet_holder.evaluate.validation import evaluate_validation_subsets

        super().perform_actual_validation(save_probabilities)
        evaluate_validation_subsets(self)
        # nnU-Net's final validation and the subset evaluation switch deep supervision off
        self.set_deep_supervision_enabled(self.enable_deep_supervision)


def plots_progress(epoch: int, num_epochs: int, plot_every: int) -> bool:
    """Whether 0-based `epoch` of `num_epochs` draws progress.png: every `plot_every`-th, and the last."""
    return (epoch + 1) % plot_every == 0 or epoch >= num_epochs - 1


class ThinnedProgressPlot:
    """nnU-Net's logger, drawing progress.png only where `plots_progress` says; the rest passes through.

    nnU-Net's `on_epoch_end` (and HolderMITrainer's copy of it) calls the logger's plot every epoch;
    wrapping the logger thins the plot without repeating that method.
    """

    def __init__(self, logger: Any, trainer: Any) -> None:
        self._logger = logger
        self._trainer = trainer

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_logger", "_trainer"):
            raise AttributeError(name)  # not yet set (copy, pickle): never recurse into the wrapped logger
        return getattr(self._logger, name)

    def plot_progress_png(self, output_folder: str) -> None:
        t = self._trainer
        if plots_progress(t.current_epoch, t.num_epochs, t.plot_every):
            self._logger.plot_progress_png(output_folder)


SMOKE: dict[str, Any] = {
    "num_epochs": 3,
    "num_iterations_per_epoch": 10,
    "num_val_iterations_per_epoch": 2,
    "plot_every": 10,
}
"""3 epochs x 10 iterations, 2 validation iterations: tests, CPU checks (progress.png at the last epoch)."""

FIVE_EPOCHS: dict[str, Any] = {"num_epochs": 5}
"""nnU-Net's meaning of `_5epochs`: 5 epochs of the default 250 iterations."""

SMALL: dict[str, Any] = {
    "num_epochs": 80,
    "num_iterations_per_epoch": 20,
    "num_val_iterations_per_epoch": 4,
    "plot_every": 10,
}
"""The CPU experiment scale with the `3d_small` configuration (`nnunet-holder plan-small`), the
same for every model (equal budget in iterations). Where each model's validation pseudo-Dice
plateaus at this budget, and where it does not yet, is measured in docs/records/synthetic_comparison.md.
progress.png every 10 epochs: drawn each epoch it takes a large share of the training loop on a CPU.
The curves that decide convergence are read from the checkpoint's log, which has every epoch."""

DEMO: dict[str, Any] = {**SMALL, "num_epochs": 200}
"""The demo's schedule: 200 epochs x 20 iterations on `3d_small` of the demo's 8 mm data, chosen by
doubling the budget from 100 epochs, which moved the models that train on modality subsets and not
vanilla nnU-Net (docs/records/demo_record.md, "Why 200 epochs")."""
