"""Seed statistics of a comparison: mean ± std over seeds, paired differences, and the verdict.

Input: per model, per seed, the `Summary` of an all-subset evaluation on the same test cases (the
per-seed value of a subset and region is the mean Dice over the test cases). Over seeds: the mean
and the sample standard deviation (ddof=1; NaN for one seed). Paired differences pair the runs of
two models trained with the same seed (same data order and initial weights where the networks
allow it) and count the seeds each model wins. Two groups summarise the 15 subsets: the mean over
the subsets with at least one missing modality and the full set. A difference counts as real only
where it exceeds the seed-to-seed spread: the larger std of the two models' per-seed values; with
one seed there is no spread and the verdict says so, unless the stds of both models were measured
before with several seeds on the same scale (`KnownSpreads`, e.g. the demo's recorded 3-seed run).
Every statistic is of one overlap metric kind (`kind`): the legacy whole-region Dice (`DICE`,
columns `Dice_R`) unless another is named, e.g. the lesion-wise Dice (`LesionDice_R`).
`metric_result` computes all of them for one kind, once, as a `MetricResult`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from nnunet_holder.evaluate.tables import Summary, case_count_cells

MISSING = "missing"
FULL = "full"
MEAN_REGION = "mean"
"""The region key of the mean over the regions (WT/TC/ET)."""
DICE = "Dice"
"""The metric kind of the legacy whole-region Dice, the default of every statistic."""

GROUPS = (MISSING, FULL)
PerSeed = dict[int, float]
"""Seed -> value (a fraction) of one quantity."""
Runs = Mapping[str, Mapping[int, Summary]]
"""Per model, per seed, the `Summary` of its all-subset evaluation."""

METRIC_NAMES = {DICE: "Dice", "LesionDice": "lesion-wise Dice"}
"""How the report names an overlap metric kind (any other kind by itself)."""

KnownSpreads = Mapping[str, Mapping[str, float]]
"""Per model, per group (MISSING, FULL): the seed-to-seed std of its region-mean Dice (fraction),
measured earlier with several seeds; stands in for the spread of a one-seed comparison."""


@dataclass(frozen=True)
class SeedStat:
    """One quantity over seeds: the per-seed values (seed order) and their mean and sample std."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else math.nan


class Paired(SeedStat):
    """model − reference per common seed (`values`), and how many seeds the model is better / worse."""

    @property
    def differences(self) -> tuple[float, ...]:
        return self.values

    @property
    def wins(self) -> int:
        return sum(d > 0 for d in self.values)

    @property
    def losses(self) -> int:
        return sum(d < 0 for d in self.values)


def metric_name(kind: str) -> str:
    return METRIC_NAMES.get(kind, kind)


def regions_of(summary: Summary, kind: str = DICE) -> list[str]:
    return summary.regions(kind)


def per_seed_values(
    runs: Mapping[int, Summary], subset: str, region: str, kind: str = DICE
) -> dict[int, float]:
    """Seed → `kind` (fraction) of one subset and region; region `MEAN_REGION` averages the regions."""
    out = {}
    for seed, summary in runs.items():
        regions = regions_of(summary, kind) if region == MEAN_REGION else [region]
        out[seed] = float(np.mean([summary.stats[subset][f"{kind}_{r}"].mean for r in regions]))
    return out


def group_subsets(order: Sequence[str], group: str) -> list[str]:
    """The subsets of a group: `FULL` the last subset of the order (all modalities), `MISSING` the rest."""
    full = order[-1]
    return [full] if group == FULL else [s for s in order if s != full]


def group_mean(per_subset: Sequence[Mapping[int, float]]) -> PerSeed:
    """Seed -> the mean over subsets of each subset's per-seed value (every subset holds every seed)."""
    return {seed: float(np.mean([v[seed] for v in per_subset])) for seed in per_subset[0]}


def seed_stat(values: Mapping[int, float]) -> SeedStat:
    return SeedStat(tuple(values[s] for s in sorted(values)))


def paired(model: Mapping[int, float], reference: Mapping[int, float]) -> Paired:
    """Differences over the seeds both models have, in seed order."""
    seeds = sorted(set(model) & set(reference))
    if not seeds:
        raise ValueError("the two models share no seed; paired differences need common seeds")
    return Paired(tuple(model[s] - reference[s] for s in seeds))


def spread(a: SeedStat, b: SeedStat) -> float:
    """The seed-to-seed spread a difference between a and b is judged against (NaN for one seed)."""
    stds = [s.std for s in (a, b) if not math.isnan(s.std)]
    return max(stds) if stds else math.nan


def verdict(
    model: str,
    reference: str,
    model_groups: Mapping[str, Mapping[int, float]],
    reference_groups: Mapping[str, Mapping[int, float]],
    known_spreads: KnownSpreads | None = None,
    kind: str = DICE,
    metric: str = "",
) -> str:
    """One plain sentence per group: who is better on the region-mean `kind`, and whether it is real.

    `model_groups` and `reference_groups` hold per group (MISSING, FULL) the per-seed region-mean
    values. Where each model has one seed, the larger of the two models' `known_spreads` for the
    group stands in for the spread (both must be known): the same rule as with several seeds, so a
    pair of steady models is judged by their small spread and not by an unsteady third model's. The
    known spreads are of the legacy Dice, so they judge only `DICE`. `metric` names the metric in
    each sentence (after the group, e.g. " (lesion-wise Dice)").
    """
    parts = []
    known_spreads = known_spreads if kind == DICE else None
    for group, label in ((MISSING, "the mean over the missing-modality subsets"), (FULL, "the full set")):
        label += metric
        a, b = model_groups[group], reference_groups[group]
        sa, sb, diff = seed_stat(a), seed_stat(b), paired(a, b)
        s = spread(sa, sb)
        source = "seed-to-seed spread"
        recorded = [(known_spreads or {}).get(m, {}).get(group) for m in (model, reference)]
        if math.isnan(s) and None not in recorded:
            s, source = max(recorded), "seed-to-seed spread of these two models measured with several seeds"
        numbers = (
            f"{model} {100 * sa.mean:.1f} vs {reference} {100 * sb.mean:.1f} (difference "
            f"{100 * diff.mean:+.1f}, {model} better on {diff.wins} of {len(diff.differences)} seeds"
        )
        if math.isnan(s):
            parts.append(
                f"On {label}, {model} vs {reference}: {numbers}); one seed, so the seed-to-seed spread is "
                "unknown and this difference may be noise."
            )
        elif abs(diff.mean) <= s:
            parts.append(
                f"On {label}, no difference between {model} and {reference}: {numbers}), within the "
                f"{source} ({100 * s:.1f})."
            )
        else:
            better, worse = (model, reference) if diff.mean > 0 else (reference, model)
            parts.append(
                f"On {label}, {better} is better than {worse}: {numbers}), beyond the {source} "
                f"({100 * s:.1f})."
            )
    return " ".join(parts)


def common_layout(
    runs: Mapping[str, Mapping[int, Summary]], kind: str = DICE
) -> tuple[list[str], list[str]]:
    """(subset order, regions of `kind`) shared by every run; refuses runs evaluated on different layouts."""
    summaries: Sequence[Summary] = [s for model in runs.values() for s in model.values()]
    if not summaries:
        raise ValueError("no evaluated run")
    order, regions = summaries[0].order, regions_of(summaries[0], kind)
    if not regions:
        raise ValueError(f"the runs were evaluated without {kind}")
    for s in summaries[1:]:
        if s.order != order or regions_of(s, kind) != regions:
            raise ValueError("the runs were evaluated on different subsets or regions")
    return list(order), list(regions)


@dataclass(frozen=True)
class MetricResult:
    """Every number a comparison reports of one overlap metric kind, computed once from the runs."""

    kind: str
    reference: str
    order: list[str]
    """The subsets, in the evaluation's order (the full set last)."""
    regions: list[str]
    """The regions of `kind`, without `MEAN_REGION`."""
    seeds: dict[str, list[int]]
    """Per model (in the comparison's order), its seeds, sorted."""
    subsets: dict[str, dict[str, dict[str, PerSeed]]]
    """Model -> subset -> region (and `MEAN_REGION`) -> per-seed value."""
    groups: dict[str, dict[str, dict[str, PerSeed]]]
    """Model -> group (`MISSING`, `FULL`) -> region (and `MEAN_REGION`) -> per-seed mean over its subsets."""
    differences: dict[str, dict[str, dict[str, Paired]]]
    """Model (every one but the reference) -> region -> subset or `MISSING` -> model − reference."""
    verdicts: list[str]
    """One `verdict` per model but the reference, in the comparison's order."""
    case_counts: dict[str, list[str]]
    """Per model whose test cases differ between subsets (incomplete cases): the cells of a row with
    each column's number of cases."""

    @property
    def models(self) -> list[str]:
        return list(self.seeds)

    @property
    def all_regions(self) -> list[str]:
        return [*self.regions, MEAN_REGION]

    @property
    def columns(self) -> list[str]:
        """The columns of the per-subset tables: every subset, then the missing-subset mean (`MISSING`)."""
        return [*self.order, MISSING]

    def values(self, model: str, column: str, region: str) -> PerSeed:
        """The per-seed values of a column of `columns`: a subset's, or the missing-subset mean's."""
        if column == MISSING:
            return self.groups[model][MISSING][region]
        return self.subsets[model][column][region]


def metric_result(
    runs: Runs, reference: str, kind: str = DICE, known_spreads: KnownSpreads | None = None
) -> MetricResult:
    """The statistics of `kind` for every model of `runs` against `reference`."""
    order, regions = common_layout(runs, kind)
    all_regions = [*regions, MEAN_REGION]
    subsets = {
        model: {s: {r: per_seed_values(model_runs, s, r, kind) for r in all_regions} for s in order}
        for model, model_runs in runs.items()
    }
    groups = {
        model: {
            g: {r: group_mean([by_subset[s][r] for s in group_subsets(order, g)]) for r in all_regions}
            for g in GROUPS
        }
        for model, by_subset in subsets.items()
    }
    seeds = {model: sorted(model_runs) for model, model_runs in runs.items()}
    counts = {model: case_count_cells(next(iter(model_runs.values()))) for model, model_runs in runs.items()}
    counts = {model: cells for model, cells in counts.items() if cells}
    tables = MetricResult(kind, reference, order, regions, seeds, subsets, groups, {}, [], counts)
    others = [model for model in runs if model != reference]
    differences = {
        model: {
            r: {c: paired(tables.values(model, c, r), tables.values(reference, c, r)) for c in tables.columns}
            for r in all_regions
        }
        for model in others
    }
    metric = "" if kind == DICE else f" ({metric_name(kind)})"
    mean_groups = {model: {g: groups[model][g][MEAN_REGION] for g in GROUPS} for model in runs}
    verdicts = [
        verdict(model, reference, mean_groups[model], mean_groups[reference], known_spreads, kind, metric)
        for model in others
    ]
    return replace(tables, differences=differences, verdicts=verdicts)
