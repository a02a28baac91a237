"""Training curves of a run from nnU-Net's checkpoint, and the epoch where a curve's plateau starts.

nnU-Net's logger (saved in every checkpoint under `logging`) holds per epoch the train loss and
the validation pseudo-Dice (`mean_fg_dice`, the full set); HolderMITrainer adds the pseudo-Dice mean
over the modality subsets (`mean_subset_dice`). A curve is the trailing mean over `WINDOW` epochs of
one of them: nnU-Net's own EMA (weight 0.1 per epoch) lags by about ten epochs, a quarter of a
40-epoch run. The plateau of a curve starts at the first epoch from which the curve stays within
`tolerance` of its final value (descriptive: a noise peak late in a flat curve moves it late). A
run counts as converged when it has stopped improving: over its last `min_fraction` of epochs the
least-squares line through the curve rises by less than `tolerance`. (Until 80-epoch runs this
used "the plateau covers the last quarter", which called flat curves with one late noise peak
unconverged; docs/records/synthetic_comparison.md gives both for every run.) The criterion reads the end
of a schedule whose learning rate falls to zero, which flattens every curve: it cannot show that a
longer schedule would do no better (the report says so above its curves table, `FLAT_END_CAVEAT`,
with the measurement), so a budget is chosen by doubling it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PLATEAU_TOLERANCE = 0.02
"""Two Dice points: about the epoch-to-epoch noise of the EMA at the CPU scale's few validation patches."""
PLATEAU_MIN_FRACTION = 0.25
WINDOW = 5


@dataclass(frozen=True)
class Curves:
    train_loss: list[float]
    full: list[float]
    subsets: list[float] | None
    epoch_seconds: list[float]


def read_curves(checkpoint: Path) -> Curves:
    import torch

    logging = torch.load(checkpoint, map_location="cpu", weights_only=False)["logging"]
    stamps = np.array(logging["epoch_end_timestamps"]) - np.array(logging["epoch_start_timestamps"])
    subsets = logging.get("mean_subset_dice")
    return Curves(
        train_loss=[float(v) for v in logging["train_losses"]],
        full=trailing_mean(logging["mean_fg_dice"]),
        subsets=trailing_mean(subsets) if subsets else None,
        epoch_seconds=[float(v) for v in stamps],
    )


def trailing_mean(values: list[float], window: int = WINDOW) -> list[float]:
    """Mean of each epoch's value and the `window - 1` before it (fewer at the start)."""
    v = np.asarray(values, dtype=float)
    return [float(v[max(0, i - window + 1) : i + 1].mean()) for i in range(len(v))]


def plateau_start(curve: list[float], tolerance: float = PLATEAU_TOLERANCE) -> int:
    """First epoch (0-based) from which every value lies within `tolerance` of the last value."""
    if not curve:
        raise ValueError("empty curve")
    values = np.asarray(curve, dtype=float)
    outside = np.flatnonzero(np.abs(values - values[-1]) > tolerance)
    return int(outside[-1] + 1) if outside.size else 0


def late_rise(curve: list[float], fraction: float = PLATEAU_MIN_FRACTION) -> float:
    """Rise of the least-squares line through the last `fraction` of the curve, over that span."""
    n = max(2, math.ceil(fraction * len(curve)))
    tail = np.asarray(curve[-n:], dtype=float)
    if tail.size < 2:
        return 0.0
    slope = np.polyfit(np.arange(tail.size), tail, 1)[0]
    return float(slope * (tail.size - 1))


def converged(
    curve: list[float], tolerance: float = PLATEAU_TOLERANCE, min_fraction: float = PLATEAU_MIN_FRACTION
) -> bool:
    """Stopped improving: the last `min_fraction` of the curve rises by less than `tolerance`."""
    return late_rise(curve, min_fraction) < tolerance


@dataclass(frozen=True)
class CurveSummary:
    """What the report shows of one run's curves, computed once: length, speed, ends, plateaus."""

    epochs: int
    seconds_per_epoch: float
    """The median epoch time."""
    train_seconds: float
    """The sum of the epoch times."""
    full: float
    """The last value of the full-set curve."""
    full_plateau: int
    full_rise: float
    subsets: float | None
    """The last value of the subset-mean curve (None for a trainer without one); likewise below."""
    subsets_plateau: int | None
    subsets_rise: float | None
    converged: bool
    """Both curves have stopped improving (`converged`)."""


def summarise_curves(curves: Curves) -> CurveSummary:
    sub = curves.subsets
    return CurveSummary(
        epochs=len(curves.full),
        seconds_per_epoch=float(np.median(curves.epoch_seconds)),
        train_seconds=sum(curves.epoch_seconds),
        full=curves.full[-1],
        full_plateau=plateau_start(curves.full),
        full_rise=late_rise(curves.full),
        subsets=sub[-1] if sub else None,
        subsets_plateau=plateau_start(sub) if sub else None,
        subsets_rise=late_rise(sub) if sub else None,
        converged=converged(curves.full) and (sub is None or converged(sub)),
    )
