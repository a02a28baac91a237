"""The comparison report: Markdown, CSV and JSON of the seed statistics, and a heatmap figure.

Per model: the 15-subset table (Dice %, mean ± std over seeds, per region and the region mean),
the mean over the missing-modality subsets and the full set; per other model: the paired
per-subset differences against the reference with the seeds it wins; the verdict sentences; the
training curves' plateau epochs. The JSON holds every per-seed value, so any other statistic can
be computed from it. The tables are of the legacy whole-region Dice; with other overlap metrics
(`kinds`, e.g. the lesion-wise Dice of `compare --metrics legacy lesion`) the first kind gets the
report above and every other kind a section of its own (verdict, summary, differences, every
subset), its JSON under `metrics`, its CSV `comparison_KIND.csv`; every heading names its metric.
A report written while runs are missing covers the seeds whose every run is
evaluated and names each missing run at its top (and in the JSON's `missing`). Every file is
replaced whole (written under a temporary name and renamed), since several workers of one
comparison may write the report at the same time.
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
from nnunet_holder.compare.curves import Curves, converged, late_rise, plateau_start
from nnunet_holder.compare.stats import (
    DICE,
    FULL,
    MEAN_REGION,
    MISSING,
    KnownSpreads,
    common_layout,
    group_values,
    paired,
    per_seed_values,
    seed_stat,
    verdict,
)
from nnunet_holder.evaluate.tables import Summary
from nnunet_holder.file_names import COMPARISON_CSV, COMPARISON_JSON, COMPARISON_MD
from nnunet_holder.parts import atomic_write

Runs = Mapping[str, Mapping[int, Summary]]
GROUP_LABELS = {MISSING: "Missing (mean of 14)", FULL: "Full"}
METRIC_NAMES = {DICE: "Dice", "LesionDice": "lesion-wise Dice"}
"""How the report names an overlap metric kind (any other kind by itself)."""


def metric_name(kind: str) -> str:
    return METRIC_NAMES.get(kind, kind)


def _cell(values: Mapping[int, float]) -> str:
    stat = seed_stat(values)
    return f"{100 * stat.mean:.1f}" + ("" if math.isnan(stat.std) else f" ± {100 * stat.std:.1f}")


def _diff_cell(model: Mapping[int, float], reference: Mapping[int, float]) -> str:
    d = paired(model, reference)
    return f"{100 * d.mean:+.1f} ({d.wins}/{len(d.differences)})"


def columns(order: Sequence[str]) -> list[str]:
    return [*order, GROUP_LABELS[MISSING]]


def _values(runs: Mapping[int, Summary], column: str, region: str, kind: str = DICE) -> dict[int, float]:
    for group, label in GROUP_LABELS.items():
        if column == label:
            return group_values(runs, group, region, kind)
    return per_seed_values(runs, column, region, kind)


def seed_table(runs: Runs, kind: str = DICE) -> str:
    """Rows region × model, columns the subsets and the missing-subset mean: `kind` % mean ± std."""
    order, regions = common_layout(runs, kind)
    cols = columns(order)
    lines = ["| Region | Model | " + " | ".join(cols) + " |", "|---|---|" + "---:|" * len(cols)]
    for region in [*regions, MEAN_REGION]:
        for model, model_runs in runs.items():
            cells = [_cell(_values(model_runs, c, region, kind)) for c in cols]
            lines.append(f"| {region} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_table(runs: Runs, kind: str = DICE) -> str:
    """Per model and region: the missing-subset mean and the full set, mean ± std over seeds."""
    _, regions = common_layout(runs, kind)
    head = [f"{GROUP_LABELS[g]} {r}" for g in (MISSING, FULL) for r in [*regions, MEAN_REGION]]
    lines = ["| Model | seeds | " + " | ".join(head) + " |", "|---|---:|" + "---:|" * len(head)]
    for model, model_runs in runs.items():
        cells = [
            _cell(group_values(model_runs, g, r, kind))
            for g in (MISSING, FULL)
            for r in [*regions, MEAN_REGION]
        ]
        lines.append(f"| {model} | {len(model_runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def difference_table(runs: Runs, reference: str, kind: str = DICE) -> str:
    """model − reference per subset (points of `kind`, region mean and per region), seeds won in brackets."""
    order, regions = common_layout(runs, kind)
    cols = columns(order)
    lines = [
        "| Region | Model − " + reference + " | " + " | ".join(cols) + " |",
        "|---|---|" + "---:|" * len(cols),
    ]
    for region in [MEAN_REGION, *regions]:
        for model, model_runs in runs.items():
            if model == reference:
                continue
            cells = [
                _diff_cell(_values(model_runs, c, region, kind), _values(runs[reference], c, region, kind))
                for c in cols
            ]
            lines.append(f"| {region} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(
    runs: Runs, reference: str, known_spreads: KnownSpreads | None = None, kind: str = DICE
) -> list[str]:
    metric = "" if kind == DICE else f" ({metric_name(kind)})"
    return [
        verdict(model, reference, model_runs, runs[reference], known_spreads, kind, metric)
        for model, model_runs in runs.items()
        if model != reference
    ]


FLAT_END_CAVEAT = (
    "\"converged\" means that the curve stopped rising at the end of this schedule. nnU-Net's learning "
    "rate falls to zero at the last epoch, which flattens the end of every curve, so this does not "
    "show that a longer schedule would do no better: runs called converged after 100 epochs gained "
    "3 to 7.5 Dice points on the full set of the validation cases when trained for 200 "
    "(docs/records/demo_record.md, \"Why 200 epochs\"). Only a run with twice the budget tells."
)
"""What the curve criterion cannot tell, printed above every curves table."""


def curves_table(curves: Mapping[str, Mapping[int, Curves]]) -> str:
    """Per run: epochs, final pseudo-Dice (trailing mean; full set, subset mean), plateau start."""
    lines = [
        "| Model | seed | epochs | s/epoch | pseudo-Dice full | plateau from epoch | rise, last quarter "
        "| subset mean | plateau from epoch | rise, last quarter | converged |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for model, by_seed in curves.items():
        for seed, c in sorted(by_seed.items()):
            sub = c.subsets
            ok = converged(c.full) and (sub is None or converged(sub))
            lines.append(
                f"| {model} | {seed} | {len(c.full)} | {np.median(c.epoch_seconds):.1f} | "
                f"{100 * c.full[-1]:.1f} | {plateau_start(c.full)} | {100 * late_rise(c.full):+.1f} | "
                + (
                    f"{100 * sub[-1]:.1f} | {plateau_start(sub)} | {100 * late_rise(sub):+.1f}"
                    if sub
                    else "– | – | –"
                )
                + f" | {'yes' if ok else 'NO'} |"
            )
    return "\n".join(lines)


def to_json(
    runs: Runs,
    reference: str,
    curves: Mapping[str, Mapping[int, Curves]],
    meta: dict,
    known_spreads: KnownSpreads | None = None,
    kind: str = DICE,
) -> dict:
    order, regions = common_layout(runs, kind)
    models = {}
    for model, model_runs in runs.items():
        entry: dict = {"seeds": sorted(model_runs), "subsets": {}, "groups": {}}
        for subset in order:
            entry["subsets"][subset] = {
                r: per_seed_values(model_runs, subset, r, kind) for r in [*regions, MEAN_REGION]
            }
        for group in (MISSING, FULL):
            entry["groups"][group] = {}
            for r in [*regions, MEAN_REGION]:
                values = group_values(model_runs, group, r, kind)
                stat = seed_stat(values)
                entry["groups"][group][r] = {
                    "per_seed": values,
                    "mean": stat.mean,
                    "std": None if math.isnan(stat.std) else stat.std,
                }
        if model in curves:
            entry["plateau_epoch"] = {
                str(seed): {
                    "full": plateau_start(c.full),
                    "subsets": plateau_start(c.subsets) if c.subsets else None,
                    "late_rise_full": late_rise(c.full),
                    "late_rise_subsets": late_rise(c.subsets) if c.subsets else None,
                    "converged": converged(c.full) and (c.subsets is None or converged(c.subsets)),
                }
                for seed, c in curves[model].items()
            }
        models[model] = entry
    return {
        **meta,
        "metric": kind,
        "reference": reference,
        "regions": regions,
        "subsets": order,
        "models": models,
        "verdict": verdicts(runs, reference, known_spreads, kind),
    }


def write_csv(runs: Runs, path: Path, kind: str = DICE) -> Path:
    """Long format: model, seed, region, subset (or group), `kind` (fraction; the column named for it)."""
    order, regions = common_layout(runs, kind)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["model", "seed", "region", "subset", kind.lower()])
    for model, model_runs in runs.items():
        for region in [*regions, MEAN_REGION]:
            for column in columns(order):
                for seed, value in sorted(_values(model_runs, column, region, kind).items()):
                    writer.writerow([model, seed, region, column, f"{value:.6f}"])
    atomic_write(path, text.getvalue())
    return path


def heatmap(runs: Runs, path: Path, title: str, kind: str = DICE) -> Path:
    """Models (rows) × subsets and the missing-subset mean (columns): region-mean `kind` %, seed mean."""
    from nnunet_holder.evaluate.figures import _figure, _save

    order, _ = common_layout(runs, kind)
    cols = columns(order)
    values = np.array(
        [[seed_stat(_values(r, c, MEAN_REGION, kind)).mean * 100 for c in cols] for r in runs.values()]
    )
    fig = _figure(figsize=(0.62 * len(cols) + 3.2, 0.5 * len(runs) + 1.8), dpi=150)
    ax = fig.subplots()
    ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(cols)), [*order, "Missing"], rotation=60, ha="left")
    ax.set_yticks(range(len(runs)), list(runs))
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


def metric_sections(runs: Runs, reference: str, kind: str, verdict_lines: Sequence[str]) -> list[str]:
    """The Markdown of one further overlap metric: its verdict, summary, differences and every subset."""
    name = metric_name(kind)
    return [
        f"\n## {name[0].upper() + name[1:]}\n",
        f"The tables above are of the {metric_name(DICE)}; these are of the {name}, of the same runs.\n",
        f"\n### Verdict ({name})\n",
        *[f"- {line}" for line in verdict_lines],
        f"\n### Mean over the missing-modality subsets and the full set ({name} %, mean ± std over seeds)\n",
        summary_table(runs, kind),
        f"\n### Paired differences against {reference} ({name} points, mean over seeds; seeds won in "
        "brackets)\n",
        difference_table(runs, reference, kind),
        f"\n### Every subset ({name} %, mean ± std over seeds)\n",
        seed_table(runs, kind),
    ]


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
    """OUT/comparison.{md,csv,json} and OUT/comparison_heatmap.png; returns the Markdown path.

    `missing` names the comparison's runs that are not in `runs` (one line each, with their state).
    `kinds` are the overlap metrics to report, the first in the main tables (the ceiling needs `DICE`
    there), each other in a section of its own.
    """
    out.mkdir(parents=True, exist_ok=True)
    main, *others = kinds
    name = metric_name(main)
    result = to_json(runs, reference, curves, meta, known_spreads, main)
    if missing:
        result["missing"] = list(missing)
    ceiling_part: list[str] = []
    if ceiling is not None:
        if main != DICE:
            raise ValueError(f"the ceiling is reported on the {metric_name(DICE)}, not the {name}")
        order, regions = common_layout(runs)
        result["ceiling"] = ceiling_json(ceiling, runs, reference, order, regions)
        ceiling_part = [
            f"\n## The ceiling: a dedicated {ceiling.trainer} per modality subset (region-mean Dice %, "
            "mean ± std over seeds)\n",
            ceiling_markdown(ceiling, runs, reference, order, regions),
            "\n" + cost_line(ceiling, curves),
        ]
    further: list[str] = []
    if others:
        result["metrics"] = {}
        for kind in others:
            entry = to_json(runs, reference, curves, {}, known_spreads, kind)
            result["metrics"][kind] = {k: entry[k] for k in ("regions", "models", "verdict")}
            write_csv(runs, out / f"comparison_{kind}.csv", kind)
            further += metric_sections(runs, reference, kind, entry["verdict"])
    atomic_write(out / COMPARISON_JSON, json.dumps(result, indent=2))
    write_csv(runs, out / COMPARISON_CSV, main)
    title = f"{name} % (mean of WT/TC/ET), mean over seeds"
    heat = heatmap(runs, out / "comparison_heatmap.png", title, main)
    parts = [
        header,
        *missing_section(missing),
        "\n## Verdict\n",
        *[f"- {line}" for line in result["verdict"]],  # the JSON's verdicts: the two cannot disagree
        f"\n## Mean over the missing-modality subsets and the full set ({name} %, mean ± std over seeds)\n",
        summary_table(runs, main),
        *ceiling_part,
        f"\n## Paired differences against {reference} ({name} points, mean over seeds; "
        "seeds won in brackets)\n",
        difference_table(runs, reference, main),
        f"\n## Every subset ({name} %, mean ± std over seeds; each seed's value is the mean over the "
        "test cases)\n",
        seed_table(runs, main),
        f"\n![heatmap]({heat.name})\n",
        *further,
        "\n## Training curves (validation pseudo-Dice from nnU-Net's logger, trailing mean of 5 epochs)\n",
        FLAT_END_CAVEAT + "\n",
        curves_table(curves),
        *[f"\n![{p.stem}]({p.relative_to(out)})" for p in figures],
    ]
    md = out / COMPARISON_MD
    atomic_write(md, "\n".join(parts) + "\n")
    return md
