"""The ceiling of a comparison and every model's gap to it (the `--dedicated` arm's report section).

The ceiling of a modality subset is the Dice of a vanilla nnU-Net trained only on that subset's
channels (a dedicated model, `compare/dedicated.py`), on its own full set; the ceiling of the full
set is the same vanilla trainer on the dataset itself. For each compared model the section gives
its Dice on the subsets the ceiling covers, its gap to the ceiling, and the fraction of two gaps it
closes: the gap from vanilla nnU-Net with zero-filled channels to the ceiling, and the gap from the
reference model to the ceiling. Seed means throughout; the per-seed values are in the JSON.
`ceiling_result` computes these numbers once; `ceiling_markdown` and `ceiling_json` render them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from nnunet_holder.compare.stats import MEAN_REGION, MetricResult, PerSeed, per_seed_values, seed_stat
from nnunet_holder.evaluate.tables import Summary


@dataclass(frozen=True)
class Ceiling:
    """The dedicated models of a comparison: per subset name (the source's), per seed, their evaluation."""

    trainer: str
    """The vanilla trainer of every dedicated model, and of the full set's ceiling."""
    subsets: Mapping[str, Mapping[int, Summary]]
    datasets: Mapping[str, str]
    """Per subset name, the derived dataset its models were trained on."""
    trainings: int = 0
    """How many dedicated models were trained (subsets × seeds; the full set's vanilla not counted)."""
    train_seconds: float = 0.0
    """Their training time, the sum of their epochs' times."""

    def covered(self, order: list[str]) -> list[str]:
        """The subsets with a ceiling, in the table's order; the full set always (vanilla)."""
        return [s for s in order if s in self.subsets or s == order[-1]]


@dataclass(frozen=True)
class CeilingResult:
    """The ceiling's numbers, computed once from the dedicated models and the compared models' Dice."""

    ceiling: Ceiling
    reference: str
    full: str
    """The full set's subset name: its ceiling is the vanilla trainer's own."""
    covered: list[str]
    """The subsets with a ceiling, in the table's order (the full set last)."""
    regions: list[str]
    """The regions, without `MEAN_REGION`."""
    values: dict[str, dict[str, PerSeed]]
    """Covered subset -> region -> the ceiling's per-seed Dice."""
    model_values: dict[str, dict[str, dict[str, PerSeed]]]
    """Model -> covered subset -> region -> its per-seed Dice."""
    missing_means: dict[str, dict[str, PerSeed]]
    """Model, and `CEILING` for the ceiling -> region -> per-seed mean over the covered missing subsets."""
    gaps: dict[str, dict[str, dict[str, float]]]
    """Model -> region -> `dice`, `ceiling`, `gap`, `closed_of_vanilla_gap`, `closed_of_reference_gap`."""

    @property
    def models(self) -> list[str]:
        return list(self.model_values)

    @property
    def all_regions(self) -> list[str]:
        return [*self.regions, MEAN_REGION]


CEILING = "ceiling"
"""The key of the ceiling's own values in `CeilingResult.missing_means`."""


def _ceiling_values(ceiling: Ceiling, subset: str, region: str, dice: MetricResult) -> PerSeed:
    """Seed → the ceiling's Dice of `subset` and `region` (the full set's from the vanilla trainer)."""
    if subset in ceiling.subsets:
        # a dedicated model's own full set is the subset it was trained on
        by_seed = ceiling.subsets[subset]
        return {s: per_seed_values({s: m}, m.order[-1], region)[s] for s, m in by_seed.items()}
    return dice.subsets[ceiling.trainer][subset][region]


def _mean_over(values: list[PerSeed]) -> PerSeed:
    seeds = sorted(set.intersection(*(set(v) for v in values)))
    return {s: float(np.mean([v[s] for v in values])) for s in seeds}


def _fraction(model: float, start: float, ceiling: float) -> float:
    """How much of the gap from `start` to `ceiling` `model` closes (NaN where there is no gap)."""
    gap = ceiling - start
    return (model - start) / gap if gap > 0 else math.nan


def ceiling_result(ceiling: Ceiling, dice: MetricResult) -> CeilingResult:
    """The ceiling's values and every model's gaps, from the comparison's legacy-Dice statistics."""
    order = dice.order
    covered = ceiling.covered(order)
    missing = [s for s in covered if s != order[-1]]
    regions = dice.all_regions
    values = {s: {r: _ceiling_values(ceiling, s, r, dice) for r in regions} for s in covered}
    model_values = {m: {s: dice.subsets[m][s] for s in covered} for m in dice.models}
    missing_means = {CEILING: {r: _mean_over([values[s][r] for s in missing]) for r in regions}}
    for m in dice.models:
        missing_means[m] = {r: _mean_over([model_values[m][s][r] for s in missing]) for r in regions}
    gaps: dict = {}
    for region in regions:
        top = seed_stat(missing_means[CEILING][region]).mean
        vanilla = seed_stat(missing_means[ceiling.trainer][region]).mean
        ref = seed_stat(missing_means[dice.reference][region]).mean
        for model in dice.models:
            value = seed_stat(missing_means[model][region]).mean
            gaps.setdefault(model, {})[region] = {
                "dice": value,
                "ceiling": top,
                "gap": top - value,
                "closed_of_vanilla_gap": _fraction(value, vanilla, top),
                "closed_of_reference_gap": _fraction(value, ref, top),
            }
    return CeilingResult(
        ceiling, dice.reference, order[-1], covered, dice.regions, values, model_values, missing_means, gaps
    )


def _cell(values: Mapping[int, float]) -> str:
    stat = seed_stat(values)
    return f"{100 * stat.mean:.1f}" + ("" if math.isnan(stat.std) else f" ± {100 * stat.std:.1f}")


def _percent(f: float) -> str:
    return "–" if math.isnan(f) else f"{100 * f:.0f} %"


def cost_line(result: CeilingResult, train_hours: Mapping[str, float]) -> str:
    """The ceiling's cost beside each unified model's (`train_hours`: its epoch time over its seeds)."""
    ceiling = result.ceiling
    return (
        f"Cost: the ceiling took {ceiling.trainings} dedicated trainings ({len(ceiling.subsets)} subsets × "
        f"seeds) and {ceiling.train_seconds / 3600:.2f} h of epoch time, plus {ceiling.trainer} on the full "
        "set; each model above took, for all its seeds: "
        + ", ".join(f"{m} {h:.2f} h" for m, h in train_hours.items())
        + "."
    )


def ceiling_markdown(result: CeilingResult) -> str:
    """The ceiling table (per covered subset, region mean) and the gap table (per region)."""
    models, reference, trainer = result.models, result.reference, result.ceiling.trainer
    lines = [
        "| Subset | ceiling (dedicated) | " + " | ".join(models) + " |",
        "|---|---:|" + "---:|" * len(models),
    ]
    for subset in result.covered:
        label = f"{subset} (vanilla)" if subset == result.full else subset
        cells = [_cell(result.values[subset][MEAN_REGION])]
        cells += [_cell(result.model_values[m][subset][MEAN_REGION]) for m in models]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    n = len(result.covered) - 1
    cells = [_cell(result.missing_means[CEILING][MEAN_REGION])]
    cells += [_cell(result.missing_means[m][MEAN_REGION]) for m in models]
    lines.append(f"| mean of the {n} missing-modality subsets above | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Gap to the ceiling on the mean of those {n} subsets (Dice points, seed means), and the share of "
        f"two gaps each model closes: from vanilla {trainer} (zero-filled channels) to the ceiling, "
        f"and from {reference} to the ceiling.",
        "",
        "| Region | Model | Dice | ceiling | gap | closes, of vanilla → ceiling | closes, of "
        f"{reference} → ceiling |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for region in [MEAN_REGION, *result.regions]:
        for model in models:
            g = result.gaps[model][region]
            lines.append(
                f"| {region} | {model} | {100 * g['dice']:.1f} | {100 * g['ceiling']:.1f} | "
                f"{100 * g['gap']:+.1f} | {_percent(g['closed_of_vanilla_gap'])} | "
                f"{_percent(g['closed_of_reference_gap'])} |"
            )
    return "\n".join(lines)


def ceiling_json(result: CeilingResult) -> dict:
    """The ceiling's per-seed values per covered subset and region, and every model's gaps."""
    nan_to_none = {
        m: {
            r: {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in g.items()}
            for r, g in by_region.items()
        }
        for m, by_region in result.gaps.items()
    }
    ceiling = result.ceiling
    return {
        "trainer": ceiling.trainer,
        "datasets": dict(ceiling.datasets),
        "trainings": ceiling.trainings,
        "train_seconds": ceiling.train_seconds,
        "subsets": result.values,
        "gaps": nan_to_none,
    }
