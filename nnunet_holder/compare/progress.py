"""What a comparison is doing: each run's epoch, pseudo-Dice and ETA, and the status file beside the report.

`TrainingProgress` follows the lines nnU-Net's trainer prints while it trains, which `runs.train`
streams into the run's log: `Epoch N` when an epoch starts, `Pseudo dice [...]` (per region; the
mean of them is nnU-Net's `mean_fg_dice`), HolderMITrainer's `Pseudo dice, mean over 15 modality
subsets: X`, `Epoch time: S s` when it ends, `Training done.` before nnU-Net's final validation.
The number of epochs is the trainer's `num_epochs` as nnU-Net records it in the fold folder's
debug.json before the first epoch, so it is right for any trainer. The ETA is the epochs left
times the median time of the last `RECENT` epochs: it leaves out nnU-Net's final validation and
the comparison's evaluation.

The worker that trains a run keeps its progress in the run's claim (`claims.py`); `write_status`
reads every run's state and its current claim from the shared output folder, so whichever worker
writes `OUT/status.md` and `OUT/status.json` (on every epoch of each of its runs, and when a run
starts or ends) writes the whole comparison's state, and a user reads it without attaching to a job.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nnunet_holder.compare.claims import ACTIVE, FAILED, Claims, Takeover
from nnunet_holder.file_names import STATUS_JSON, STATUS_MD
from nnunet_holder.parts import atomic_write

if TYPE_CHECKING:
    from nnunet_holder.compare.runs import Run

RECENT = 10
"""Epochs whose median time gives the ETA: recent enough to follow a change of load."""
_EPOCH = re.compile(r"\bEpoch (\d+)\s*$")
_EPOCH_TIME = re.compile(r"\bEpoch time: ([\d.]+) s")
_REGION_DICE = re.compile(r"\bPseudo dice \[(.*)\]")
_SUBSET_DICE = re.compile(r"\bPseudo dice, mean over \d+ modality subsets: ([\d.]+|nan)")
_NUMPY_SCALAR = re.compile(r"np\.float\d+\(([^)]*)\)")


@dataclass
class TrainingProgress:
    """A training's state from its log lines."""

    phase: str = "starting"
    """starting (nnU-Net builds the trainer), training, validating (nnU-Net's final validation)."""
    epoch: int | None = None
    """The epoch under way or last finished (0-based)."""
    num_epochs: int | None = None
    pseudo_dice: float | None = None
    """Mean over the regions of the latest epoch's validation pseudo-Dice."""
    subset_dice: float | None = None
    """HolderMITrainer's mean over the modality subsets, where the trainer reports it."""
    epoch_seconds: list[float] = field(default_factory=list)
    """The last `RECENT` epochs' times."""

    def feed(self, line: str) -> bool:
        """Take one log line; True where it ended an epoch or the training (a new line to show)."""
        if m := _EPOCH.search(line):
            self.phase, self.epoch = "training", int(m.group(1))
        elif m := _REGION_DICE.search(line):
            values = [float(v) for v in _NUMPY_SCALAR.sub(r"\1", m.group(1)).split(",") if v.strip()]
            self.pseudo_dice = statistics.fmean(values) if values else None
        elif m := _SUBSET_DICE.search(line):
            self.subset_dice = float(m.group(1))
        elif m := _EPOCH_TIME.search(line):
            self.epoch_seconds = [*self.epoch_seconds, float(m.group(1))][-RECENT:]
            return True
        elif "Training done." in line:
            self.phase = "validating"
            return True
        return False

    @property
    def seconds_per_epoch(self) -> float | None:
        return statistics.median(self.epoch_seconds) if self.epoch_seconds else None

    @property
    def eta_seconds(self) -> float | None:
        """Seconds to the last epoch's end, from the recent epochs' median time."""
        if self.num_epochs is None or self.epoch is None or self.seconds_per_epoch is None:
            return None
        return max(0, self.num_epochs - 1 - self.epoch) * self.seconds_per_epoch

    def summary(self) -> str:
        """`epoch 12/40, pseudo-Dice 0.712 (subsets 0.655), 8.1 s/epoch, ETA 0:03:42`."""
        if self.epoch is None:
            return self.phase
        parts = [f"epoch {self.epoch + 1}/{self.num_epochs or '?'}"]
        if self.pseudo_dice is not None:
            subsets = "" if self.subset_dice is None else f" (subsets {self.subset_dice:.3f})"
            parts.append(f"pseudo-Dice {self.pseudo_dice:.3f}{subsets}")
        if self.seconds_per_epoch is not None:
            parts.append(f"{self.seconds_per_epoch:.1f} s/epoch")
        if self.phase == "validating":
            parts.append("nnU-Net's final validation")
        elif (eta := self.eta_seconds) is not None:
            parts.append(f"ETA {duration(eta)}")
        return ", ".join(parts)

    def record(self) -> dict:
        return asdict(self)


def duration(seconds: float) -> str:
    """`1:02:03` (hours unbounded)."""
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def num_epochs(fold_folder: Path) -> int | None:
    """The trainer's `num_epochs`, from the debug.json nnU-Net writes before the first epoch."""
    try:
        return int(json.loads((fold_folder / "debug.json").read_text())["num_epochs"])
    except (OSError, KeyError, ValueError):
        return None


def run_status(run: Run, takeover: Takeover) -> dict:
    """One run's line of the status: its state, the progress its current claim records, and its worker."""
    current = Claims(run.claims_folder).current()
    record = (current[1] or {}) if current else {}
    progress = record.get("progress") or {}
    row = {
        "run": run.name,
        "seed": run.seed,
        "epoch": progress.get("epoch"),
        "num_epochs": progress.get("num_epochs"),
        "pseudo_dice": progress.get("pseudo_dice"),
        "seconds_per_epoch": None,
        "eta_seconds": None,
        "worker": f"{record['host']} pid {record['pid']}" if record.get("host") else None,
        "claims": len(Claims(run.claims_folder).numbers()),
    }
    if progress:
        p = TrainingProgress(**progress)
        row["seconds_per_epoch"], row["eta_seconds"] = p.seconds_per_epoch, p.eta_seconds
    state = record.get("state")
    if run.evaluated:
        row["state"] = "done"
    elif state == ACTIVE and current is not None and not takeover.stale(record, current[2]):
        row["state"] = record.get("stage", "training")
        if row["state"] == "training" and progress.get("phase") == "validating":
            row["state"] = "validating"
    elif state == ACTIVE:
        row["state"] = "interrupted (its worker is gone; the next worker resumes it)"
    elif state == FAILED:
        message = record.get("message") or ""
        row["state"] = f"failed: {message.splitlines()[0]}" if message else "failed"
    else:
        row["state"] = "trained, not evaluated" if run.trained else "not started"
    if row["state"] != "training":
        row["eta_seconds"] = None  # an ETA only while it trains
    return row


def status(runs: Sequence[Run], takeover: Takeover) -> dict:
    rows = [run_status(r, takeover) for r in runs]
    now = time.time()
    return {
        "updated": now,
        "updated_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
        "done": sum(r["state"] == "done" for r in rows),
        "runs": rows,
    }


def status_markdown(state: dict) -> str:
    lines = [
        f"# Comparison status, {state['updated_at']}",
        "",
        f"{state['done']} of {len(state['runs'])} runs done (trained and evaluated). The ETA counts the "
        "training epochs left, from the median time of the last epochs; nnU-Net's final validation and the "
        "evaluation follow it.",
        "",
        "| Run | seed | state | epoch | pseudo-Dice | s/epoch | ETA | worker | claims |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in state["runs"]:
        epoch = "" if r["epoch"] is None else f"{r['epoch'] + 1}/{r['num_epochs'] or '?'}"
        dice = "" if r["pseudo_dice"] is None else f"{r['pseudo_dice']:.3f}"
        speed = "" if r["seconds_per_epoch"] is None else f"{r['seconds_per_epoch']:.1f}"
        eta = "" if r["eta_seconds"] is None else duration(r["eta_seconds"])
        lines.append(
            f"| {r['run']} | {r['seed']} | {r['state']} | {epoch} | {dice} | {speed} | {eta} | "
            f"{r['worker'] or ''} | {r['claims']} |"
        )
    return "\n".join(lines) + "\n"


def write_status(runs: Sequence[Run], out: Path, takeover: Takeover) -> dict:
    """OUT/status.md and OUT/status.json, each replaced whole; returns the state."""
    state = status(runs, takeover)
    atomic_write(out / STATUS_JSON, json.dumps(state, indent=2))
    atomic_write(out / STATUS_MD, status_markdown(state))
    return state
