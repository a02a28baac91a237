"""Per-case metric rows → the all-subset table of the paper (CSV, Markdown, JSON) and comparisons.

The evaluation produces one row per (case, modality subset): {"case", "subset", "Dice_WT",
"HD95_WT", ...}. This module writes those rows, reduces them to a `Summary` (mean ± population
std per subset and metric, plus the average over subsets) and renders the summary the way the
paper's Table II reads: regions as rows, subsets as columns in the paper's order, then Avg.
Summaries round-trip through JSON so several trained models can be compared in one table.
Incomplete test cases have rows only for the subsets they have, so the number of cases can differ
between subsets: each cell's count is kept (`Stat.n`) and, where it differs, the tables show it.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nnunet_holder.evaluate.lesion import DEFAULT_CHALLENGE
from nnunet_holder.file_names import SUBSET_TABLE_STEM
from nnunet_holder.subsets import all_subsets, subset_name

AVERAGE = "Average"
"""Key of the average over subsets in `Summary.stats`, the CSV and the JSON (shown as "Avg")."""

# metric prefix -> (scale, decimals, heading); Dice is shown in percent like the paper
_DISPLAY = {
    "Dice": (100.0, 1, "Dice (%)"),
    "HD95": (1.0, 2, "HD95 (mm)"),
    "LesionDice": (100.0, 1, f"Lesion-wise Dice (%), BraTS 2023 {DEFAULT_CHALLENGE} rules"),
    "LesionHD95": (1.0, 2, f"Lesion-wise HD95 (mm), BraTS 2023 {DEFAULT_CHALLENGE} rules"),
}
_DEFAULT_DISPLAY = (1.0, 3, None)


class Stat(NamedTuple):
    mean: float
    std: float
    n: int


@dataclass
class Summary:
    """Mean, population std and count per subset and metric, subsets in display order.

    `stats[subset][metric]` for every subset of `order` and for `AVERAGE`. The average's mean is
    the mean of the subset means; its std is the population std over cases of each case's mean
    over subsets (NaN unless every case has every subset) and its n the number of such cases.
    """

    order: list[str]
    metrics: list[str]
    stats: dict[str, dict[str, Stat]]
    modality_names: list[str] = field(default_factory=list)

    def regions(self, kind: str) -> list[str]:
        """Region names of the metrics of one kind: "Dice" → ["WT", "TC", "ET"]."""
        prefix = kind + "_"
        return [m[len(prefix) :] for m in self.metrics if m.startswith(prefix)]

    def kinds(self) -> list[str]:
        """Metric kinds in order of first appearance: ["Dice", "HD95"]."""
        return list(dict.fromkeys(m.split("_", 1)[0] for m in self.metrics))


def paper_subset_order(modality_names: Sequence[str]) -> list[str]:
    """Subset names in the paper's column order for these modalities (channel order)."""
    names = tuple(modality_names)
    return [subset_name(s, names) for s in all_subsets(len(names))]


def write_case_csv(rows: Sequence[Mapping[str, object]], path: str | Path) -> Path:
    """One line per (case, subset); columns case, subset, then the metrics of the first row."""
    if not rows:
        raise ValueError("no rows to write")
    columns = list(rows[0].keys())
    if columns[:2] != ["case", "subset"]:
        columns = ["case", "subset"] + [c for c in columns if c not in ("case", "subset")]
    for row in rows:
        if set(row) != set(columns):
            raise ValueError(f"row {row.get('case')}/{row.get('subset')} has columns {sorted(row)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in columns})
    return path


def read_case_csv(path: str | Path) -> list[dict[str, object]]:
    """Rows written by `write_case_csv`, metrics as floats."""
    with Path(path).open(newline="") as f:
        return [
            {k: (v if k in ("case", "subset") else float(v)) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def summarise(
    rows: Sequence[Mapping[str, object]],
    subset_order: Sequence[str],
    metric_columns: Sequence[str],
    modality_names: Sequence[str] = (),
) -> Summary:
    """Mean ± std per subset of every metric column, plus the average over subsets.

    std is the population standard deviation (ddof=0) over the cases of a subset. A subset that no
    case has (every case lacks one of its modalities) gets NaN with n 0 and stays out of the average
    over subsets. There must be rows, every row's subset must be in the order, and a (case, subset)
    pair may occur once.
    """
    order = list(subset_order)
    metrics = list(metric_columns)
    values: dict[str, dict[str, dict[str, float]]] = {s: {} for s in order}  # subset -> case -> metric
    for row in rows:
        subset, case = str(row["subset"]), str(row["case"])
        if subset not in values:
            raise ValueError(f"subset {subset!r} of case {case!r} is not in the subset order {order}")
        if case in values[subset]:
            raise ValueError(f"case {case!r} appears twice for subset {subset!r}")
        values[subset][case] = {m: float(row[m]) for m in metrics}
    if not rows:
        raise ValueError("no rows to summarise")

    stats: dict[str, dict[str, Stat]] = {}
    for subset in order:
        per_case = values[subset].values()
        stats[subset] = {m: _stat([c[m] for c in per_case]) for m in metrics}
    stats[AVERAGE] = _average(values, order, metrics, stats)
    return Summary(order=order, metrics=metrics, stats=stats, modality_names=list(modality_names))


def summary_markdown(summary: Summary, protocol: str | None = None) -> str:
    """The paper's layout, one table per metric kind: rows = regions, columns = subsets, Avg.

    `protocol`, when given, heads the tables as "### Protocol: ..." (how missing modalities were
    made); a heading needs no blank line after it, so it stays in the first table's block.
    """
    blocks = []
    n = sorted(set(case_counts(summary)))
    n_text = f"{n[0]} cases" if len(n) == 1 else f"{n[0]}–{n[-1]} cases (row 'cases')"
    for kind in summary.kinds():
        scale, decimals, heading = _DISPLAY.get(kind, _DEFAULT_DISPLAY)
        lines = [
            f"**{heading or kind}**, mean ± std (population) over {n_text} per subset",
            "",
            "| Region | " + " | ".join(summary.order) + " | Avg |",
            "|---|" + "---:|" * (len(summary.order) + 1),
        ]
        for region in summary.regions(kind):
            metric = f"{kind}_{region}"
            cells = [_cell(summary.stats[s][metric], scale, decimals) for s in [*summary.order, AVERAGE]]
            lines.append(f"| {region} | " + " | ".join(cells) + " |")
        if counts := case_count_cells(summary):
            lines.append("| cases | " + " | ".join(counts) + " |")
        blocks.append("\n".join(lines))
    text = "\n\n".join(blocks) + "\n"
    return text if protocol is None else f"### Protocol: {protocol}\n{text}"


def summary_to_dict(summary: Summary) -> dict[str, object]:
    """JSON-ready: {subset: {metric: {"mean", "std", "n"}}} plus "order", "metrics", "modality_names"."""
    out: dict[str, object] = {
        "order": summary.order,
        "metrics": summary.metrics,
        "modality_names": summary.modality_names,
    }
    for subset in [*summary.order, AVERAGE]:
        out[subset] = {
            m: {"mean": _json_float(st.mean), "std": _json_float(st.std), "n": st.n}
            for m, st in summary.stats[subset].items()
        }
    return out


def load_summary(json_path: str | Path) -> Summary:
    """Read a summary written by `write_summary`."""
    data = json.loads(Path(json_path).read_text())
    order, metrics = list(data["order"]), list(data["metrics"])
    stats = {
        subset: {
            m: Stat(_from_json_float(v["mean"]), _from_json_float(v["std"]), int(v["n"]))
            for m, v in data[subset].items()
        }
        for subset in [*order, AVERAGE]
    }
    return Summary(order=order, metrics=metrics, stats=stats, modality_names=list(data["modality_names"]))


def write_summary(
    summary: Summary, out_dir: str | Path, stem: str = SUBSET_TABLE_STEM, protocol: str | None = None
) -> dict[str, Path]:
    """Write stem.csv (long: subset, metric, mean, std, n), stem.md (headed by `protocol`) and stem.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / f"{stem}.csv", "md": out_dir / f"{stem}.md", "json": out_dir / f"{stem}.json"}
    with paths["csv"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["subset", "metric", "mean", "std", "n"])
        for subset in [*summary.order, AVERAGE]:
            for metric in summary.metrics:
                st = summary.stats[subset][metric]
                writer.writerow([subset, metric, st.mean, st.std, st.n])
    paths["md"].write_text(summary_markdown(summary, protocol))
    paths["json"].write_text(json.dumps(summary_to_dict(summary), indent=1) + "\n")
    return paths


def comparison_table(summaries: Mapping[str, Summary], metric: str = "Dice", with_std: bool = False) -> str:
    """Markdown like the paper's Table II: rows (region, model), columns subsets then Avg.

    Rows are grouped by region, models in the given order; cells are means (± std with
    `with_std`), Dice in percent. All summaries must share the subset order and regions.
    """
    order, regions = _common_layout(summaries, metric)
    scale, decimals, heading = _DISPLAY.get(metric, _DEFAULT_DISPLAY)
    lines = [
        f"**{heading or metric}**",
        "",
        "| Region | Model | " + " | ".join(order) + " | Avg |",
        "|---|---|" + "---:|" * (len(order) + 1),
    ]
    for region in regions:
        for model, summary in summaries.items():
            stats = [summary.stats[s][f"{metric}_{region}"] for s in [*order, AVERAGE]]
            if with_std:
                cells = [_cell(st, scale, decimals) for st in stats]
            else:
                cells = [f"{st.mean * scale:.{decimals}f}" for st in stats]
            lines.append(f"| {region} | {model} | " + " | ".join(cells) + " |")
    for model, summary in summaries.items():
        if counts := case_count_cells(summary):
            lines.append(f"| cases | {model} | " + " | ".join(counts) + " |")
    return "\n".join(lines) + "\n"


def write_comparison_csv(summaries: Mapping[str, Summary], path: str | Path, metric: str = "Dice") -> Path:
    """CSV variant of `comparison_table`: region, model, one mean per subset, Average; raw units."""
    order, regions = _common_layout(summaries, metric)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["region", "model", *order, AVERAGE])
        for region in regions:
            for model, summary in summaries.items():
                means = [summary.stats[s][f"{metric}_{region}"].mean for s in [*order, AVERAGE]]
                writer.writerow([region, model, *means])
    return path


def _stat(values: Sequence[float]) -> Stat:
    if not values:
        return Stat(math.nan, math.nan, 0)
    arr = np.asarray(values, dtype=np.float64)
    return Stat(float(arr.mean()), float(arr.std(ddof=0)), int(arr.size))


def case_counts(summary: Summary) -> list[int]:
    """The number of cases behind each subset's cells, in the summary's order."""
    return [summary.stats[s][summary.metrics[0]].n for s in summary.order]


def case_count_cells(summary: Summary) -> list[str] | None:
    """The cells of a "cases" row (one per subset, "–" for Avg) when the count differs between subsets
    (incomplete test cases), None when every subset has the same cases."""
    counts = case_counts(summary)
    return None if len(set(counts)) == 1 else [*map(str, counts), "–"]


def _average(
    values: dict[str, dict[str, dict[str, float]]],
    order: list[str],
    metrics: list[str],
    stats: dict[str, dict[str, Stat]],
) -> dict[str, Stat]:
    case_sets = [set(values[s]) for s in order]
    complete = all(cases == case_sets[0] for cases in case_sets)
    out = {}
    scored = [s for s in order if values[s]]
    for m in metrics:
        mean = float(np.mean([stats[s][m].mean for s in scored]))
        if complete:
            cases = sorted(case_sets[0])
            per_case = np.array([[values[s][c][m] for s in order] for c in cases]).mean(axis=1)
            out[m] = Stat(mean, float(per_case.std(ddof=0)), len(cases))
        else:
            out[m] = Stat(mean, math.nan, 0)
    return out


def _common_layout(summaries: Mapping[str, Summary], metric: str) -> tuple[list[str], list[str]]:
    if not summaries:
        raise ValueError("no summaries to compare")
    first_name, first = next(iter(summaries.items()))
    order, regions = first.order, first.regions(metric)
    if not regions:
        raise ValueError(f"summary {first_name!r} has no {metric} metrics")
    for name, summary in summaries.items():
        if summary.order != order or summary.regions(metric) != regions:
            raise ValueError(f"summary {name!r} has a different subset order or regions than {first_name!r}")
    return order, regions


def _cell(stat: Stat, scale: float, decimals: int) -> str:
    if math.isnan(stat.std):
        return f"{stat.mean * scale:.{decimals}f}"
    return f"{stat.mean * scale:.{decimals}f} ± {stat.std * scale:.{decimals}f}"


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def _from_json_float(value: float | None) -> float:
    return math.nan if value is None else float(value)
