"""The result of a comparison, computed once from the runs' subset tables and training curves.

`compare_result` turns the runs (per model, per seed, the `Summary` of its all-subset evaluation)
into one `Comparison`: per overlap metric kind its `MetricResult` (every per-seed value, group mean,
paired difference and verdict, `stats.py`), per run the summary of its training curves, per model
its training time, and the ceiling's values and gaps where the comparison has a `--dedicated` arm
(`ceiling.py`). `report.py` only renders this object, so its Markdown, JSON and CSV cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nnunet_holder.compare.ceiling import Ceiling, CeilingResult, ceiling_result
from nnunet_holder.compare.curves import Curves, CurveSummary, summarise_curves
from nnunet_holder.compare.stats import DICE, KnownSpreads, MetricResult, Runs, metric_name, metric_result


@dataclass(frozen=True)
class Comparison:
    """Everything a comparison's report shows, computed once."""

    reference: str
    metrics: dict[str, MetricResult]
    """Per overlap metric kind, in the report's order: the first heads the report, each other has a
    section of its own."""
    curves: dict[str, dict[int, CurveSummary]]
    """Per model, per seed (as the runs were read), the summary of its training curves."""
    train_hours: dict[str, float]
    """Per model with curves, its epoch time summed over its seeds, in hours."""
    ceiling: CeilingResult | None
    missing: list[str]
    """The comparison's runs that are not in this result, one line each with its state."""

    @property
    def main(self) -> MetricResult:
        return next(iter(self.metrics.values()))

    @property
    def further(self) -> list[MetricResult]:
        return list(self.metrics.values())[1:]


def compare_result(
    runs: Runs,
    reference: str,
    curves: Mapping[str, Mapping[int, Curves]],
    known_spreads: KnownSpreads | None = None,
    ceiling: Ceiling | None = None,
    missing: Sequence[str] = (),
    kinds: Sequence[str] = (DICE,),
) -> Comparison:
    """The comparison of `runs` against `reference` on each metric of `kinds` (the first the main one).

    The ceiling is of the legacy Dice, so with a `ceiling` the first kind must be `DICE`.
    """
    if ceiling is not None and kinds[0] != DICE:
        raise ValueError(
            f"the ceiling is reported on the {metric_name(DICE)}, not the {metric_name(kinds[0])}"
        )
    metrics = {kind: metric_result(runs, reference, kind, known_spreads) for kind in kinds}
    summaries = {m: {s: summarise_curves(c) for s, c in by_seed.items()} for m, by_seed in curves.items()}
    hours = {
        m: sum(c.train_seconds for c in by_seed.values()) / 3600
        for m, by_seed in summaries.items()
        if by_seed
    }
    arm = ceiling_result(ceiling, metrics[DICE]) if ceiling is not None else None
    return Comparison(reference, metrics, summaries, hours, arm, list(missing))
