"""The comparison report: Markdown, CSV and JSON of one `Comparison`, and a heatmap figure.

Per model: the 15-subset table (Dice %, mean ± std over seeds, per region and the region mean),
the mean over the missing-modality subsets and the full set; per other model: the paired
per-subset differences against the reference with the seeds it wins; the verdict sentences; the
training curves' plateau epochs. The JSON holds every per-seed value, so any other statistic can
be computed from it. The tables are of the legacy whole-region Dice; with other overlap metrics
(`kinds`, e.g. the lesion-wise Dice of `compare --metrics legacy lesion`) the first kind gets the
report above and every other kind a section of its own (verdict, summary, differences, every
subset), its JSON under `metrics`, its CSV `comparison_KIND.csv`; every heading names its metric.
A report written while runs are missing covers the seeds whose every run is
evaluated and names each missing run at its top (and in the JSON's `missing`). Every number comes
from the one `Comparison` (`result.py`) that `write_report` computes first; this module only
renders it. Every file is replaced whole (written under a temporary name and renamed), since
several workers of one comparison may write the report at the same time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nnunet_holder.compare.ceiling import Ceiling, ceiling_json, ceiling_markdown, cost_line
from nnunet_holder.compare.curves import Curves, CurveSummary
from nnunet_holder.compare.result import Comparison, compare_result
from nnunet_holder.compare.stats import (
    DICE,
    FULL,
    GROUPS,
    MEAN_REGION,
    MISSING,
    KnownSpreads,
    MetricResult,
    Paired,
    Runs,
    metric_name,
    seed_stat,
)
from nnunet_holder.file_names import (
    COMPARISON_CSV,
    COMPARISON_HEATMAP,
    COMPARISON_JSON,
    COMPARISON_MD,
    comparison_csv,
)
from nnunet_holder.parts import atomic_write

GROUP_LABELS = {MISSING: "Missing (mean of 14)", FULL: "Full"}


def _cell(values: Mapping[int, float]) -> str:
    stat = seed_stat(values)
    return f"{100 * stat.mean:.1f}" + ("" if math.isnan(stat.std) else f" ± {100 * stat.std:.1f}")


def _diff_cell(d: Paired) -> str:
    return f"{100 * d.mean:+.1f} ({d.wins}/{len(d.differences)})"


def _label(column: str) -> str:
    """A column's name in the tables and the CSV: the subset, or the missing-subset mean's label."""
    return GROUP_LABELS[MISSING] if column == MISSING else column


def seed_table(metric: MetricResult) -> str:
    """Rows region × model, columns the subsets and the missing-subset mean: `kind` % mean ± std; with
    incomplete test cases, a row per model with the number of test cases of each subset."""
    cols = metric.columns
    lines = [
        "| Region | Model | " + " | ".join(map(_label, cols)) + " |",
        "|---|---|" + "---:|" * len(cols),
    ]
    for region in metric.all_regions:
        for model in metric.models:
            cells = [_cell(metric.values(model, c, region)) for c in cols]
            lines.append(f"| {region} | {model} | " + " | ".join(cells) + " |")
    for model, counts in metric.case_counts.items():  # how many cases each column averages
        lines.append(f"| cases | {model} | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def summary_table(metric: MetricResult) -> str:
    """Per model and region: the missing-subset mean and the full set, mean ± std over seeds."""
    head = [f"{GROUP_LABELS[g]} {r}" for g in GROUPS for r in metric.all_regions]
    lines = ["| Model | seeds | " + " | ".join(head) + " |", "|---|---:|" + "---:|" * len(head)]
    for model in metric.models:
        cells = [_cell(metric.groups[model][g][r]) for g in GROUPS for r in metric.all_regions]
        lines.append(f"| {model} | {len(metric.seeds[model])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def difference_table(metric: MetricResult) -> str:
    """model − reference per subset (points of `kind`, region mean and per region), seeds won in brackets."""
    cols = metric.columns
    lines = [
        "| Region | Model − " + metric.reference + " | " + " | ".join(map(_label, cols)) + " |",
        "|---|---|" + "---:|" * len(cols),
    ]
    for region in [MEAN_REGION, *metric.regions]:
        for model, by_region in metric.differences.items():
            cells = [_diff_cell(by_region[region][c]) for c in cols]
            lines.append(f"| {region} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


FLAT_END_CAVEAT = (
    "\"converged\" means that the curve stopped rising at the end of this schedule. nnU-Net's learning "
    "rate falls to zero at the last epoch, which flattens the end of every curve, so this does not "
    "show that a longer schedule would do no better: runs called converged have gained several Dice "
    "points when trained for twice as long (docs/records/demo_record.md, \"Why 200 epochs\"). Only a "
    "run with twice the budget tells."
)
"""What the curve criterion cannot tell, printed above every curves table."""


def curves_table(curves: Mapping[str, Mapping[int, CurveSummary]]) -> str:
    """Per run: epochs, final pseudo-Dice (trailing mean; full set, subset mean), plateau start."""
    lines = [
        "| Model | seed | epochs | s/epoch | pseudo-Dice full | plateau from epoch | rise, last quarter "
        "| subset mean | plateau from epoch | rise, last quarter | converged |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for model, by_seed in curves.items():
        for seed, c in sorted(by_seed.items()):
            lines.append(
                f"| {model} | {seed} | {c.epochs} | {c.seconds_per_epoch:.1f} | "
                f"{100 * c.full:.1f} | {c.full_plateau} | {100 * c.full_rise:+.1f} | "
                + (
                    f"{100 * c.subsets:.1f} | {c.subsets_plateau} | {100 * c.subsets_rise:+.1f}"
                    if c.subsets is not None
                    else "– | – | –"
                )
                + f" | {'yes' if c.converged else 'NO'} |"
            )
    return "\n".join(lines)


def _curves_json(by_seed: Mapping[int, CurveSummary]) -> dict:
    return {
        str(seed): {
            "full": c.full_plateau,
            "subsets": c.subsets_plateau,
            "late_rise_full": c.full_rise,
            "late_rise_subsets": c.subsets_rise,
            "converged": c.converged,
        }
        for seed, c in by_seed.items()
    }


def to_json(comparison: Comparison, metric: MetricResult, meta: dict) -> dict:
    """`meta`, then every per-seed value, group statistic and verdict of `metric`, and the curves."""
    models = {}
    for model in metric.models:
        entry: dict = {
            "seeds": metric.seeds[model],
            "subsets": {s: metric.subsets[model][s] for s in metric.order},
            "groups": {},
        }
        for group in GROUPS:
            entry["groups"][group] = {}
            for r in metric.all_regions:
                values = metric.groups[model][group][r]
                stat = seed_stat(values)
                entry["groups"][group][r] = {
                    "per_seed": values,
                    "mean": stat.mean,
                    "std": None if math.isnan(stat.std) else stat.std,
                }
        if model in comparison.curves:
            entry["plateau_epoch"] = _curves_json(comparison.curves[model])
        models[model] = entry
    return {
        **meta,
        "metric": metric.kind,
        "reference": metric.reference,
        "regions": metric.regions,
        "subsets": metric.order,
        "models": models,
        "verdict": metric.verdicts,
    }


def write_csv(metric: MetricResult, path: Path) -> Path:
    """Long format: model, seed, region, subset (or group), `kind` (fraction; the column named for it)."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["model", "seed", "region", "subset", metric.kind.lower()])
    for model in metric.models:
        for region in metric.all_regions:
            for column in metric.columns:
                for seed, value in sorted(metric.values(model, column, region).items()):
                    writer.writerow([model, seed, region, _label(column), f"{value:.6f}"])
    atomic_write(path, text.getvalue())
    return path


def heatmap(metric: MetricResult, path: Path, title: str) -> Path:
    """Models (rows) × subsets and the missing-subset mean (columns): region-mean `kind` %, seed mean."""
    from nnunet_holder.evaluate.figures import _figure, _save

    cols, models = metric.columns, metric.models
    values = np.array(
        [[seed_stat(metric.values(m, c, MEAN_REGION)).mean * 100 for c in cols] for m in models]
    )
    fig = _figure(figsize=(0.62 * len(cols) + 3.2, 0.5 * len(models) + 1.8), dpi=150)
    ax = fig.subplots()
    ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(cols)), [*metric.order, "Missing"], rotation=60, ha="left")
    ax.set_yticks(range(len(models)), models)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(
                j,
                i,
                f"{values[i, j]:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if values[i, j] > 60 else "white",
            )
    ax.set_title(title, fontsize=9, pad=48)
    temp = _save(fig, path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}{path.suffix}"))
    os.replace(temp, path)
    return path


def missing_section(missing: Sequence[str]) -> list[str]:
    """The report's list of the runs it lacks, each with its state."""
    if not missing:
        return []
    return [
        f"\n## Missing runs: this report is incomplete\n\nIt lacks {len(missing)} of the comparison's runs; "
        "its tables hold only the seeds whose every run is evaluated. Re-run the comparison's command to "
        "train and evaluate them.\n",
        *[f"- {line}" for line in missing],
    ]


def write_incomplete(out: Path, header: str, meta: dict, missing: Sequence[str]) -> Path:
    """The report while no seed has every run evaluated: the header and the missing runs only."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / COMPARISON_JSON, json.dumps({**meta, "missing": list(missing)}, indent=2))
    md = out / COMPARISON_MD
    atomic_write(md, "\n".join([header, *missing_section(missing)]) + "\n")
    return md


def verdict_lines(metric: MetricResult) -> list[str]:
    """The verdict's bullet points; a comparison of one model says it has nothing to judge."""
    if len(metric.models) > 1:
        return [f"- {line}" for line in metric.verdicts]
    return [
        f"One model, {metric.reference}: no verdict and no paired differences (give `compare` "
        "another `-tr`, or `--dedicated` for the ceiling)."
    ]


def difference_section(metric: MetricResult, heading: str) -> list[str]:
    """The paired-differences heading and table, or nothing for a comparison of one model."""
    return [heading, difference_table(metric)] if len(metric.models) > 1 else []


def metric_sections(metric: MetricResult) -> list[str]:
    """The Markdown of one further overlap metric: its verdict, summary, differences and every subset."""
    name = metric_name(metric.kind)
    return [
        f"\n## {name[0].upper() + name[1:]}\n",
        f"The tables above are of the {metric_name(DICE)}; these are of the {name}, of the same runs.\n",
        f"\n### Verdict ({name})\n",
        *verdict_lines(metric),
        f"\n### Mean over the missing-modality subsets and the full set ({name} %, mean ± std over seeds)\n",
        summary_table(metric),
        *difference_section(
            metric,
            f"\n### Paired differences against {metric.reference} ({name} points, mean over seeds; seeds "
            "won in brackets)\n",
        ),
        f"\n### Every subset ({name} %, mean ± std over seeds)\n",
        seed_table(metric),
    ]


def render(comparison: Comparison, out: Path, header: str, meta: dict, figures: Sequence[Path] = ()) -> Path:
    """OUT/comparison.{md,csv,json}, a CSV per further metric and OUT/comparison_heatmap.png."""
    out.mkdir(parents=True, exist_ok=True)
    main, reference = comparison.main, comparison.reference
    name = metric_name(main.kind)
    result = to_json(comparison, main, meta)
    if comparison.missing:
        result["missing"] = comparison.missing
    ceiling_part: list[str] = []
    if comparison.ceiling is not None:
        arm = comparison.ceiling
        result["ceiling"] = ceiling_json(arm)
        ceiling_part = [
            f"\n## The ceiling: a dedicated {arm.ceiling.trainer} per modality subset (region-mean Dice %, "
            "mean ± std over seeds)\n",
            ceiling_markdown(arm),
            "\n" + cost_line(arm, comparison.train_hours),
        ]
    further: list[str] = []
    if comparison.further:
        result["metrics"] = {}
        for metric in comparison.further:
            entry = to_json(comparison, metric, {})
            result["metrics"][metric.kind] = {k: entry[k] for k in ("regions", "models", "verdict")}
            write_csv(metric, out / comparison_csv(metric.kind))
            further += metric_sections(metric)
    atomic_write(out / COMPARISON_JSON, json.dumps(result, indent=2))
    write_csv(main, out / COMPARISON_CSV)
    title = f"{name} % (mean of WT/TC/ET), mean over seeds"
    heat = heatmap(main, out / COMPARISON_HEATMAP, title)
    parts = [
        header,
        *missing_section(comparison.missing),
        "\n## Verdict\n",
        *verdict_lines(main),
        f"\n## Mean over the missing-modality subsets and the full set ({name} %, mean ± std over seeds)\n",
        summary_table(main),
        *ceiling_part,
        *difference_section(
            main,
            f"\n## Paired differences against {reference} ({name} points, mean over seeds; seeds won in "
            "brackets)\n",
        ),
        f"\n## Every subset ({name} %, mean ± std over seeds; each seed's value is the mean over the "
        "test cases)\n",
        seed_table(main),
        f"\n![heatmap]({heat.name})\n",
        *further,
        "\n## Training curves (validation pseudo-Dice from nnU-Net's logger, trailing mean of 5 epochs)\n",
        FLAT_END_CAVEAT + "\n",
        curves_table(comparison.curves),
        *[f"\n![{p.stem}]({p.relative_to(out)})" for p in figures],
    ]
    md = out / COMPARISON_MD
    atomic_write(md, "\n".join(parts) + "\n")
    return md


def write_report(
    runs: Runs,
    reference: str,
    curves: Mapping[str, Mapping[int, Curves]],
    out: Path,
    header: str,
    meta: dict,
    known_spreads: KnownSpreads | None = None,
    figures: Sequence[Path] = (),
    ceiling: Ceiling | None = None,
    missing: Sequence[str] = (),
    kinds: Sequence[str] = (DICE,),
) -> Path:
    """Compute the comparison of `runs` once (`compare_result`) and render it; returns the Markdown path.

    `missing` names the comparison's runs that are not in `runs` (one line each, with their state).
    `kinds` are the overlap metrics to report, the first in the main tables (the ceiling needs `DICE`
    there), each other in a section of its own.
    """
    comparison = compare_result(runs, reference, curves, known_spreads, ceiling, missing, kinds)
    return render(comparison, out, header, meta, figures)
