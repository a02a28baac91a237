"""The ceiling of a comparison and every model's gap to it (the `--dedicated` arm's report section).

The ceiling of a modality subset is the Dice of a vanilla nnU-Net trained only on that subset's
channels (a dedicated model, `compare/dedicated.py`), on its own full set; the ceiling of the full
set is the same vanilla trainer on the dataset itself. For each compared model the section gives
its Dice on the subsets the ceiling covers, its gap to the ceiling, and the fraction of two gaps it
closes: the gap from vanilla nnU-Net with zero-filled channels to the ceiling, and the gap from the
reference model to the ceiling. Seed means throughout; the per-seed values are in the JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from nnunet_holder.compare.stats import MEAN_REGION, per_seed_values, seed_stat
from nnunet_holder.evaluate.tables import Summary

Runs = Mapping[str, Mapping[int, Summary]]


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

    def values(self, subset: str, region: str, runs: Runs) -> dict[int, float]:
        """Seed → the ceiling's Dice of `subset` and `region` (the full set's from `runs[trainer]`)."""
        if subset in self.subsets:
            by_seed = self.subsets[subset]
            # a dedicated model's own full set is the subset it was trained on
            return {s: per_seed_values({s: m}, m.order[-1], region)[s] for s, m in by_seed.items()}
        return per_seed_values(runs[self.trainer], subset, region)

    def covered(self, order: list[str]) -> list[str]:
        """The subsets with a ceiling, in the table's order; the full set always (vanilla)."""
        return [s for s in order if s in self.subsets or s == order[-1]]


def _mean_over(values: list[dict[int, float]]) -> dict[int, float]:
    seeds = sorted(set.intersection(*(set(v) for v in values)))
    return {s: float(np.mean([v[s] for v in values])) for s in seeds}


def missing_mean(
    ceiling: Ceiling, model_runs: Mapping[int, Summary] | None, order: list[str], region: str, runs: Runs
) -> dict[int, float]:
    """Seed → mean over the covered missing-modality subsets of the model's Dice (the ceiling's if None)."""
    subsets = [s for s in ceiling.covered(order) if s != order[-1]]
    if model_runs is None:
        return _mean_over([ceiling.values(s, region, runs) for s in subsets])
    return _mean_over([per_seed_values(model_runs, s, region) for s in subsets])


def _fraction(model: float, start: float, ceiling: float) -> float:
    """How much of the gap from `start` to `ceiling` `model` closes (NaN where there is no gap)."""
    gap = ceiling - start
    return (model - start) / gap if gap > 0 else math.nan


def gaps(ceiling: Ceiling, runs: Runs, reference: str, order: list[str], regions: list[str]) -> dict:
    """Per model and region (and the region mean): Dice on the covered missing subsets, the gap to the
    ceiling, and the fractions of the vanilla → ceiling and reference → ceiling gaps it closes."""
    out: dict = {}
    for region in [*regions, MEAN_REGION]:
        top = seed_stat(missing_mean(ceiling, None, order, region, runs)).mean
        vanilla = seed_stat(missing_mean(ceiling, runs[ceiling.trainer], order, region, runs)).mean
        ref = seed_stat(missing_mean(ceiling, runs[reference], order, region, runs)).mean
        for model, model_runs in runs.items():
            value = seed_stat(missing_mean(ceiling, model_runs, order, region, runs)).mean
            out.setdefault(model, {})[region] = {
                "dice": value,
                "ceiling": top,
                "gap": top - value,
                "closed_of_vanilla_gap": _fraction(value, vanilla, top),
                "closed_of_reference_gap": _fraction(value, ref, top),
            }
    return out


def _cell(values: Mapping[int, float]) -> str:
    stat = seed_stat(values)
    return f"{100 * stat.mean:.1f}" + ("" if math.isnan(stat.std) else f" ± {100 * stat.std:.1f}")


def _percent(f: float) -> str:
    return "–" if math.isnan(f) else f"{100 * f:.0f} %"


def cost_line(ceiling: Ceiling, curves: Mapping[str, Mapping[int, object]]) -> str:
    """The ceiling's cost beside each unified model's: trainings and hours of epoch time."""
    own = {
        m: sum(sum(c.epoch_seconds) for c in by_seed.values()) / 3600
        for m, by_seed in curves.items()
        if by_seed
    }
    return (
        f"Cost: the ceiling took {ceiling.trainings} dedicated trainings ({len(ceiling.subsets)} subsets × "
        f"seeds) and {ceiling.train_seconds / 3600:.2f} h of epoch time, plus {ceiling.trainer} on the full "
        "set; each model above took, for all its seeds: "
        + ", ".join(f"{m} {h:.2f} h" for m, h in own.items())
        + "."
    )


def ceiling_markdown(
    ceiling: Ceiling, runs: Runs, reference: str, order: list[str], regions: list[str]
) -> str:
    """The ceiling table (per covered subset, region mean) and the gap table (per region)."""
    covered = ceiling.covered(order)
    models = list(runs)
    lines = [
        "| Subset | ceiling (dedicated) | " + " | ".join(models) + " |",
        "|---|---:|" + "---:|" * len(models),
    ]
    for subset in covered:
        label = f"{subset} (vanilla)" if subset == order[-1] else subset
        cells = [_cell(ceiling.values(subset, MEAN_REGION, runs))]
        cells += [_cell(per_seed_values(runs[m], subset, MEAN_REGION)) for m in models]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    n = len(covered) - 1
    cells = [_cell(missing_mean(ceiling, None, order, MEAN_REGION, runs))]
    cells += [_cell(missing_mean(ceiling, runs[m], order, MEAN_REGION, runs)) for m in models]
    lines.append(f"| mean of the {n} missing-modality subsets above | " + " | ".join(cells) + " |")
    table = gaps(ceiling, runs, reference, order, regions)
    lines += [
        "",
        f"Gap to the ceiling on the mean of those {n} subsets (Dice points, seed means), and the share of "
        f"two gaps each model closes: from vanilla {ceiling.trainer} (zero-filled channels) to the ceiling, "
        f"and from {reference} to the ceiling.",
        "",
        "| Region | Model | Dice | ceiling | gap | closes, of vanilla → ceiling | closes, of "
        f"{reference} → ceiling |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for region in [MEAN_REGION, *regions]:
        for model in models:
            g = table[model][region]
            lines.append(
                f"| {region} | {model} | {100 * g['dice']:.1f} | {100 * g['ceiling']:.1f} | "
                f"{100 * g['gap']:+.1f} | {_percent(g['closed_of_vanilla_gap'])} | "
                f"{_percent(g['closed_of_reference_gap'])} |"
            )
    return "\n".join(lines)


def ceiling_json(ceiling: Ceiling, runs: Runs, reference: str, order: list[str], regions: list[str]) -> dict:
    """The ceiling's per-seed values per covered subset and region, and every model's gaps."""
    nan_to_none = {
        m: {
            r: {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in g.items()}
            for r, g in by_region.items()
        }
        for m, by_region in gaps(ceiling, runs, reference, order, regions).items()
    }
    return {
        "trainer": ceiling.trainer,
        "datasets": dict(ceiling.datasets),
        "trainings": ceiling.trainings,
        "train_seconds": ceiling.train_seconds,
        "subsets": {
            s: {r: ceiling.values(s, r, runs) for r in [*regions, MEAN_REGION]}
            for s in ceiling.covered(order)
        },
        "gaps": nan_to_none,
    }
