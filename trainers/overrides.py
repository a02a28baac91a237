"""Class-level hyperparameter overrides for nnU-Net trainers, so a variant is one line.

nnU-Net sets its hyperparameters (num_epochs, initial_lr, ...) as instance attributes inside
`nnUNetTrainer.__init__`, and its own variants repeat a constructor to change them. Here a
variant declares `overrides = {...}`; the mixin applies the overrides of every class in the MRO,
base first, after nnU-Net's constructor. The constructor keeps nnU-Net's exact signature
because nnU-Net records its arguments by name for checkpoints and DDP workers.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch


class OverridesMixin:
    """Put before the nnU-Net trainer class in the bases; set `overrides` in subclasses."""

    overrides: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = torch.device("cuda"),  # noqa: B008 (nnU-Net's own default)
    ) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        for klass in reversed(type(self).__mro__):
            for name, value in vars(klass).get("overrides", {}).items():
                setattr(self, name, value)


SMOKE: dict[str, Any] = {"num_epochs": 3, "num_iterations_per_epoch": 10, "num_val_iterations_per_epoch": 2}
"""3 epochs x 10 iterations, 2 validation iterations: tests, CPU checks."""

FIVE_EPOCHS: dict[str, Any] = {"num_epochs": 5}
"""nnU-Net's meaning of `_5epochs`: 5 epochs of the default 250 iterations."""

DEMO: dict[str, Any] = {"num_epochs": 16, "num_iterations_per_epoch": 20, "num_val_iterations_per_epoch": 3}
"""The demo's short schedule, the same for every model it compares (equal training budget)."""
