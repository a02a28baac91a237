"""What the user can expect for a case: the model's validation Dice for the modalities it had.

Every fold trained by a trainer of this package writes, at its final validation, the per-case
Dice of every modality subset (`fold_K/validation/subset_metrics_per_case.csv`). For a predicted
case this module pools those rows over the folds the prediction used (each fold's own held-out
cases, so with all five folds it is the cross-validation over the training set) and gives, per
region, mean ± std for the case's subset and for each subset one more modality would reach. A
model without these tables (one of nnU-Net's own trainers, or a fold whose validation did not run)
gets no expectation, and the report says why instead of guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nnunet_holder.evaluate.tables import read_case_csv
from nnunet_holder.file_names import PER_CASE_TABLE, VALIDATION_FOLDER
from nnunet_holder.subsets import modality_names, subset_name

TABLE = Path(VALIDATION_FOLDER) / PER_CASE_TABLE
"""A fold's per-case subset metrics, relative to its fold folder."""


class ValidationTable:
    """Per-subset validation Dice pooled over the folds of a prediction (or why there is none)."""

    def __init__(
        self, rows: list[dict], channel_names: dict[str, str], source: str, absent: str = ""
    ) -> None:
        self.rows, self.source, self.absent = rows, source, absent
        self.channel_names = channel_names
        self.short = modality_names(channel_names)
        self.regions = [k[len("Dice_") :] for k in (rows[0] if rows else {}) if k.startswith("Dice_")]

    @classmethod
    def load(
        cls, model_folder: Path, folds: Sequence[int | str], channel_names: dict[str, str]
    ) -> ValidationTable:
        files = [model_folder / f"fold_{f}" / TABLE for f in folds]
        lacking = [f for f in files if not f.is_file()]
        if not files or lacking:
            where = lacking[0] if lacking else model_folder
            return cls([], channel_names, "", f"no validation subset table ({where} does not exist)")
        rows = [row for f in files for row in read_case_csv(f)]
        cases = len({r["case"] for r in rows})
        source = (
            f"validation of fold{'s' if len(files) > 1 else ''} {', '.join(map(str, folds))} ({cases} cases)"
        )
        return cls(rows, channel_names, source)

    def _stats(self, subset: tuple[int, ...]) -> dict[str, list[float]]:
        name = subset_name(subset, self.short)
        rows = [r for r in self.rows if r["subset"] == name]
        return {
            region: [float(np.mean(v)), float(np.std(v))]
            for region in self.regions
            if (v := [float(r[f"Dice_{region}"]) for r in rows])
        }

    def expectation(self, used: Sequence[str]) -> dict[str, object]:
        """Report fields for a case that had the channels named `used` (dataset.json names)."""
        if self.absent or not used:
            reason = self.absent or "the case was not predicted"
            return {"expected_dice": None, "expected": f"no expectation: {reason}"}
        index = {str(n): int(i) for i, n in self.channel_names.items()}
        subset = tuple(sorted(index[n] for n in used))
        more = [tuple(sorted((*subset, m))) for m in range(len(self.short)) if m not in subset]
        dice = {
            "source": self.source,
            "subset": subset_name(subset, self.short),
            "dice": self._stats(subset),
            "with_one_more": {self.short[sorted(set(s) - set(subset))[0]]: self._stats(s) for s in more},
        }
        return {"expected_dice": dice, "expected": self.sentence(dice)}

    @staticmethod
    def sentence(dice: dict) -> str:
        """'T2+Fl: WT 85 ± 5, TC 60 ± 20, ET 41 ± 20; with T1c: ...' (Dice %, the source last)."""

        def cells(stats: dict[str, list[float]]) -> str:
            return ", ".join(f"{r} {100 * m:.0f} ± {100 * s:.0f}" for r, (m, s) in stats.items())

        parts = [f"{dice['subset']}: {cells(dice['dice'])}"]
        parts += [f"with {m}: {cells(stats)}" for m, stats in dice["with_one_more"].items()]
        return "; ".join(parts) + f" (Dice %, {dice['source']})"
