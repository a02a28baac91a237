"""Gather the all-subset evaluations of several trained models into one comparison table, like the paper's.

Each model is given as NAME=PATH, NAME=GLOB, PATH or GLOB, where PATH is a `subset_table.json` written
by `nnunet-holder evaluate-subsets` (or the trainer's final validation) or a folder holding one; without
NAME the folder name is used (results/137/HolderMITrainer_paper -> HolderMITrainer_paper). A name given
several tables (several splits of the same model) needs `--average`: the model's row is then the mean
over those tables of the per-subset means (its "std" is left empty, its n is the total case count).

Layouts: `subsets` (default) is the paper's Table II/III: rows region × model, the 15 subsets and
the average as columns, rendered by `nnunet_holder.evaluate.tables.comparison_table` and
`write_comparison_csv`. `regions` is Tables IV/VIII: one row per model, each region's mean over the
subsets, and the mean of the regions. `missing` is Table V: the mean over the subsets with 3, 2, 1
and 0 missing modalities, then the mean over all subsets, per region and averaged over the regions.
The Markdown is printed; `-o STEM` also writes STEM.md and STEM.csv.
"""

from __future__ import annotations

import argparse
import csv
import glob
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nnunet_holder.evaluate.tables import (
    AVERAGE,
    Stat,
    Summary,
    comparison_table,
    load_summary,
    write_comparison_csv,
)
from nnunet_holder.file_names import SUBSET_TABLE
from nnunet_holder.subsets import all_subsets, subset_name

TABLE_FILE = SUBSET_TABLE
LAYOUTS = ("subsets", "regions", "missing")
_SCALE = {"Dice": (100.0, 1, "Dice (%)"), "HD95": (1.0, 2, "HD95 (mm)")}


def resolve_tables(specs: Sequence[str]) -> dict[str, list[Path]]:
    """NAME=PATH / NAME=GLOB / PATH / GLOB arguments -> {model name: [subset_table.json, ...]} in order."""
    models: dict[str, list[Path]] = {}
    for spec in specs:
        name, sep, pattern = spec.partition("=")
        if not sep or "/" in name or not name:
            name, pattern = "", spec
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        files = []
        for match in matches:
            path = Path(match)
            path = path / TABLE_FILE if path.is_dir() else path
            if not path.is_file():
                raise SystemExit(f"{spec}: no {TABLE_FILE} at {path}")
            files.append(path)
        if not files:
            raise SystemExit(f"{spec}: the pattern matches nothing")
        for path in files:
            models.setdefault(name or path.parent.name, []).append(path)
    return models


def average_summaries(summaries: Sequence[Summary]) -> Summary:
    """Per subset and metric, the mean of the summaries' means (e.g. over data splits); std NaN, n summed."""
    first = summaries[0]
    for other in summaries[1:]:
        if other.order != first.order or other.metrics != first.metrics:
            raise SystemExit("the tables to average have different subsets or metrics")
    stats = {
        subset: {
            m: Stat(float(np.mean([s.stats[subset][m].mean for s in summaries])), math.nan,
                    sum(s.stats[subset][m].n for s in summaries))
            for m in first.metrics
        }
        for subset in [*first.order, AVERAGE]
    }
    return Summary(order=list(first.order), metrics=list(first.metrics), stats=stats,
                   modality_names=list(first.modality_names))


def load_models(models: Mapping[str, Sequence[Path]], average: bool) -> dict[str, Summary]:
    out = {}
    for name, paths in models.items():
        if len(paths) > 1 and not average:
            listed = ", ".join(str(p) for p in paths)
            raise SystemExit(f"model {name!r} has {len(paths)} tables ({listed}); pass --average to average "
                             "them (e.g. the three splits) or give each its own NAME=")
        summaries = [load_summary(p) for p in paths]
        out[name] = summaries[0] if len(summaries) == 1 else average_summaries(summaries)
    return out


def _regions(summaries: Mapping[str, Summary], metric: str) -> list[str]:
    regions = next(iter(summaries.values())).regions(metric)
    if not regions:
        raise SystemExit(f"the tables have no {metric} metrics")
    for name, summary in summaries.items():
        if summary.regions(metric) != regions:
            raise SystemExit(f"model {name!r} has regions {summary.regions(metric)}, expected {regions}")
    return regions


def regions_rows(summaries: Mapping[str, Summary], metric: str) -> tuple[list[str], list[list]]:
    """Tables IV/VIII: per model, each region's mean over all subsets and the mean over the regions."""
    regions = _regions(summaries, metric)
    rows = []
    for name, summary in summaries.items():
        means = [summary.stats[AVERAGE][f"{metric}_{r}"].mean for r in regions]
        rows.append([name, *means, float(np.mean(means))])
    return ["model", *regions, "Avg"], rows


def _mean_of_means(summary: Summary, subsets: Sequence[str], metrics: Sequence[str]) -> float:
    return float(np.mean([summary.stats[s][k].mean for s in subsets for k in metrics]))


def missing_rows(summaries: Mapping[str, Summary], metric: str) -> tuple[list[str], list[list]]:
    """Table V: per region and model, the mean over the subsets missing j modalities, j = M-1..0, and Avg."""
    regions = _regions(summaries, metric)
    first = next(iter(summaries.values()))
    m = len(first.modality_names)
    if m == 0:
        raise SystemExit("the tables carry no modality names; the 'missing' layout needs them")
    sizes = {subset_name(s, tuple(first.modality_names)): len(s) for s in all_subsets(m)}
    if set(sizes) != set(first.order):
        raise SystemExit(f"subsets {first.order} do not match the modalities {first.modality_names}")
    missing_counts = list(range(m - 1, -1, -1))
    rows = []
    for region in [*regions, "mean"]:
        for name, summary in summaries.items():
            metrics = [f"{metric}_{r}" for r in (regions if region == "mean" else [region])]
            groups = [_mean_of_means(summary, [s for s in summary.order if m - sizes[s] == j], metrics)
                      for j in missing_counts]
            rows.append([region, name, *groups, _mean_of_means(summary, summary.order, metrics)])
    return ["region", "model", *[f"{j} missing" for j in missing_counts], "Avg"], rows


def render(header: Sequence[str], rows: Sequence[Sequence], metric: str) -> str:
    scale, decimals, heading = _SCALE.get(metric, (1.0, 3, metric))
    labels = sum(1 for c in rows[0] if isinstance(c, str))
    lines = [f"**{heading}**", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * labels + "---:|" * (len(header) - labels)]
    for row in rows:
        cells = [c if isinstance(c, str) else f"{c * scale:.{decimals}f}" for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_rows_csv(header: Sequence[str], rows: Sequence[Sequence], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="NAME=PATH, NAME=GLOB, PATH or GLOB (PATH: subset_table.json or its folder)")
    parser.add_argument("--metric", default="Dice", help="metric kind: Dice (default) or HD95")
    parser.add_argument("--layout", choices=LAYOUTS, default="subsets",
                        help="subsets: Tables II/III; regions: Tables IV/VIII; missing: Table V")
    parser.add_argument("--average", action="store_true",
                        help="average the tables that share a model name (e.g. the three BraTS 2018 splits)")
    parser.add_argument("--with-std", action="store_true", help="subsets layout: mean ± std per cell")
    parser.add_argument("-o", dest="output", type=Path, help="also write OUTPUT.md and OUTPUT.csv")
    args = parser.parse_args(argv)

    models = resolve_tables(args.models)
    for name, paths in models.items():
        print(f"{name}: " + ", ".join(str(p) for p in paths), file=sys.stderr)
    summaries = load_models(models, args.average)
    header, rows = [], []
    if args.layout == "subsets":
        try:
            markdown = comparison_table(summaries, args.metric, with_std=args.with_std)
        except ValueError as e:
            raise SystemExit(str(e)) from e
    else:
        header, rows = (regions_rows if args.layout == "regions" else missing_rows)(summaries, args.metric)
        markdown = render(header, rows, args.metric)
    averaged = [f"{name} over {len(paths)} tables" for name, paths in models.items() if len(paths) > 1]
    if averaged:
        markdown = f"Mean of the per-subset means: {', '.join(averaged)}.\n\n" + markdown
    print(markdown)
    if args.output is not None:
        md_path = args.output.with_name(args.output.name + ".md")
        csv_path = args.output.with_name(args.output.name + ".csv")
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(markdown)
        if args.layout == "subsets":
            write_comparison_csv(summaries, csv_path, args.metric)
        else:
            write_rows_csv(header, rows, csv_path)
        print(f"written {md_path} and {csv_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
