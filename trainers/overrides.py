"""Class-level hyperparameter overrides for nnU-Net trainers, so a variant is one line.

nnU-Net sets its hyperparameters (num_epochs, initial_lr, ...) as instance attributes inside
`nnUNetTrainer.__init__`, and its own variants repeat a constructor to change them. Here a
variant declares `overrides = {...}`; the mixin applies the overrides of every class in the MRO,
base first, after nnU-Net's constructor. The constructor keeps nnU-Net's exact signature
because nnU-Net records its arguments by name for checkpoints and DDP workers. The mixin also
seeds the run where `nnUNet_seed` is set (`trainers/seeding.py`), so every trainer of the project
can be seeded the same way, sets the CPU threads where `nnUNet_torch_threads` is set
(`trainers/cpu_threads.py`), and it can thin nnU-Net's per-epoch progress.png (`plot_every`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from nnunet_holder.trainers.cpu_threads import THREADS_VARIABLE, threads_from_environment
from nnunet_holder.trainers.seeding import (
    SEED_VARIABLE,
    seed_everything,
    seed_from_environment,
    seeded_augmenter_workers,
)


class OverridesMixin:
    """Put before the nnU-Net trainer class in the bases; set `overrides` in subclasses."""

    overrides: ClassVar[dict[str, Any]] = {}
    plot_every: int = 1
    """Draw progress.png every `plot_every` epochs and at the last (nnU-Net: every epoch). The plot
    is a 3000x5400-pixel figure that takes about 1-2 s to draw on a 2-core CPU, as long as a whole
    epoch of the CPU experiment scale; it does not touch the training (no random numbers)."""

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

    def get_dataloaders(self):  # noqa: ANN201 (nnU-Net's signature)
        if self.seed is None:
            return super().get_dataloaders()
        with seeded_augmenter_workers(self.seed, self.local_rank):
            return super().get_dataloaders()


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
plateaus at this budget, and where it does not yet, is measured in docs/synthetic_comparison.md.
progress.png every 10 epochs: drawn each epoch it took a fifth of the training loop (py-spy, 2-core CPU).
The curves that decide convergence are read from the checkpoint's log, which has every epoch."""

DEMO: dict[str, Any] = {**SMALL, "num_epochs": 200}
"""The demo's schedule: 200 epochs x 20 iterations on `3d_small` of the demo's 8 mm data, chosen by
doubling the budget: after 100 epochs, the models that train on modality subsets gained several
Dice points on the validation cases when trained for 200, while vanilla nnU-Net did not move
(docs/demo_record.md, "Why 200 epochs")."""
