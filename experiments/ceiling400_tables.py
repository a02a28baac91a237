"""The budget tables of docs/records/ceiling.md: the ceiling and two unified trainers at 200-800 epochs.

Reads the committed evaluations only: `docs/records/ceiling400/{val,test}{200,400,800}_KEY_sS.json`
(`subset_table.json` files of `evaluate-subsets` or `compare`; KEY `sample3`, `fullHalf`, `vanilla`
or `dedicated_SUBSET`), the 3-seed 200-epoch comparison `ceiling_200epochs_sample3.json` (test
cases: the ceiling, both unified models, vanilla) and `distillation_validation/` (validation cases:
the ceiling and the 3-subset trainer, 3 seeds at 200 epochs). Prints, per case set, the seed-0
table (the ceiling at 200 and at 400 epochs beside both unified models) and the table of every
seed evaluated at 400 epochs: per subset the region-mean Dice (seed mean ± std), then per region
the share of the `_fullHalf` -> ceiling gap the 3-subset trainer closes, against the 200-epoch
ceiling (3 seeds) on the mean of the covered subsets and against the 400-epoch ceiling (the
dedicated models and vanilla at 400, the seeds recorded: equal per-model budget) on the mean of
the four single modalities; last, per region, `_fullHalf` at 200, 400 and 800 epochs (1x, 2x, 4x
the demo's budget) against the 400-epoch ceiling.
usage: python experiments/ceiling400_tables.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

RECORDS = Path(__file__).resolve().parent.parent / "docs" / "records"
TABLES = RECORDS / "ceiling400"
REGIONS = ["WT", "TC", "ET"]
SINGLES = ["Fl", "T2", "T1c", "T1"]
COVERED = [*SINGLES, "T1c+Fl"]
UNIFIED = {
    "sample3": "HolderMITrainer_inputFusion_distill_singlesHalf_sample3_demo",
    "fullHalf": "nnUNetTrainerModalityDropout_fullHalf_demo",
}
VALIDATION_200 = {"sample3": UNIFIED["sample3"], "vanilla": "nnUNetTrainer_demo"}
DEDICATED_FILE = {"T1c+Fl": "T1cFl"}

# (subset, region) -> {seed: Dice}; region "mean" is the mean of the three
Source = Callable[[str, str], dict[int, float]]


def _table_dice(table: dict, subset: str, region: str) -> float:
    regions = REGIONS if region == "mean" else [region]
    return float(np.mean([table[subset][f"Dice_{r}"]["mean"] for r in regions]))


def _tables(paths: dict[int, Path], own_full: bool = False) -> Source:
    """Subset tables per seed; a dedicated model's table holds its own subset as `Full`."""
    loaded = {seed: json.loads(p.read_text()) for seed, p in paths.items() if p.is_file()}

    def values(subset: str, region: str) -> dict[int, float]:
        return {s: _table_dice(t, "Full" if own_full else subset, region) for s, t in loaded.items()}
    return values


def _recorded(key: str, cases: str, epochs: int) -> Source:
    paths = {s: TABLES / f"{cases}{epochs}_{key}_s{s}.json" for s in range(3)}
    return _tables(paths, own_full=key.startswith("dedicated"))


def _dedicated_recorded(cases: str, epochs: int) -> Source:
    """The ceiling of the recorded runs: each single modality's dedicated model, the full set vanilla's."""
    by_subset = {s: _recorded(f"dedicated_{s}", cases, epochs) for s in SINGLES}
    by_subset["Full"] = _recorded("vanilla", cases, epochs)
    return lambda subset, region: by_subset[subset](subset, region) if subset in by_subset else {}


def comparison_200(model: str | None) -> Source:
    """A model (None: the ceiling) of the 3-seed 200-epoch comparison on the test cases."""
    comparison = json.loads((RECORDS / "ceiling_200epochs_sample3.json").read_text())
    subsets = comparison["ceiling"]["subsets"] if model is None else comparison["models"][model]["subsets"]
    return lambda subset, region: {int(s): v for s, v in subsets.get(subset, {}).get(region, {}).items()}


def _validation_200(name: str) -> Source:
    folder = RECORDS / "distillation_validation"
    if name == "ceiling":
        by_subset = {s: _tables({k: folder / f"dedicated_{DEDICATED_FILE.get(s, s)}_seed{k}.json"
                                 for k in range(3)}, own_full=True) for s in COVERED}
        by_subset["Full"] = _validation_200("vanilla")
        return lambda subset, region: by_subset[subset](subset, region) if subset in by_subset else {}
    return _tables({k: folder / f"{VALIDATION_200[name]}_seed{k}.json" for k in range(3)})


def _mean_over(source: Source, subsets: list[str], region: str) -> dict[int, float]:
    """Per seed, the mean over `subsets`; empty where one of them has no value."""
    per_subset = [source(s, region) for s in subsets]
    seeds = set.intersection(*(set(v) for v in per_subset))
    return {k: float(np.mean([v[k] for v in per_subset])) for k in sorted(seeds)}


def _seed(source: Source, seed: int) -> Source:
    return lambda subset, region: {k: v for k, v in source(subset, region).items() if k == seed}


def _cell(values: dict[int, float]) -> str:
    if not values:
        return "–"
    v = 100 * np.array(list(values.values()))
    return f"{v.mean():.1f}" + (f" ± {v.std(ddof=1):.1f}" if len(v) > 1 else "")


def _missing(source: Source, region: str) -> dict[int, float]:
    order = json.loads((TABLES / "test400_sample3_s0.json").read_text())["order"]
    return _mean_over(source, [s for s in order if s != "Full"], region)


def _rows(columns: dict[str, Source]) -> list[str]:
    header = "| subset | " + " | ".join(columns) + " |"
    lines = [header, "|---|" + "---:|" * len(columns)]
    for subset in [*SINGLES, "T1c+Fl", "Full"]:
        cells = [_cell(src(subset, "mean")) for src in columns.values()]
        lines.append(f"| {subset} | " + " | ".join(cells) + " |")
    lines.append("| mean of the 4 single modalities | "
                 + " | ".join(_cell(_mean_over(src, SINGLES, "mean")) for src in columns.values()) + " |")
    lines.append("| mean of the 14 missing subsets | "
                 + " | ".join(_cell(_missing(src, "mean")) for src in columns.values()) + " |")
    return lines


def _seed_mean(values: dict[int, float]) -> float:
    return float(np.mean(list(values.values())))


def gap_shares(ceiling: Source, candidate: Source, reference: Source, subsets: list[str]) -> dict[str, float]:
    """Per region (and their mean): the share of the reference -> ceiling gap the candidate closes,
    on the mean over `subsets`, of seed means (as `compare --dedicated` reports it) over the seeds
    both models have."""
    shares = {}
    for region in [*REGIONS, "mean"]:
        top = _seed_mean(_mean_over(ceiling, subsets, region))
        cand, ref = (_mean_over(src, subsets, region) for src in (candidate, reference))
        seeds = set(cand) & set(ref)
        cand, ref = (_seed_mean({k: v[k] for k in seeds}) for v in (cand, ref))
        shares[region] = (cand - ref) / (top - ref)
    return shares


def _shares(ceiling: Source, candidate: Source, reference: Source, subsets: list[str]) -> list[str]:
    """The gap table: per region the three models, the share closed and the per-seed shares
    (candidate and reference of the same seed against the ceiling's seed mean)."""
    lines = ["| region | ceiling | 3-subset | `_fullHalf` | share closed (per seed) |",
             "|---|---:|---:|---:|---|"]
    shares = gap_shares(ceiling, candidate, reference, subsets)
    for region in [*REGIONS, "mean"]:
        c, m, r = (_mean_over(src, subsets, region) for src in (ceiling, candidate, reference))
        per_seed = [(m[k] - r[k]) / (_seed_mean(c) - r[k]) for k in sorted(set(m) & set(r))]
        lines.append(f"| {region} | {_cell(c)} | {_cell(m)} | {_cell(r)} | {100 * shares[region]:.0f} % "
                     f"({', '.join(f'{100 * s:.0f}' for s in per_seed)}) |")
    return lines


def _budget(ceiling: Source, budgets: dict[str, Source]) -> list[str]:
    """Per region, the ceiling and one unified model at several budgets, with each budget's gap to
    the ceiling (seed means), on the mean of the single modalities and on T1c alone."""
    lines = ["| subsets | region | ceiling 400 | " + " | ".join(budgets) + " | "
             + " | ".join(f"gap {name.split()[-1]}" for name in budgets) + " |",
             "|---|---|" + "---:|" * (1 + 2 * len(budgets))]
    for label, subsets in (("4 single modalities", SINGLES), ("T1c alone", ["T1c"])):
        for region in [*REGIONS, "mean"]:
            top = _mean_over(ceiling, subsets, region)
            values = [_mean_over(src, subsets, region) for src in budgets.values()]
            gaps = [f"{100 * (_seed_mean(top) - _seed_mean(v)):.1f}" if v else "–" for v in values]
            lines.append(f"| {label} | {region} | {_cell(top)} | " + " | ".join(map(_cell, values))
                         + " | " + " | ".join(gaps) + " |")
    return lines


def main() -> int:
    for cases in ("val", "test"):
        print(f"\n## {cases}, seed 0, region-mean Dice %\n")
        seed0 = {f"{name} {e}": _seed(make(cases, e), 0)
                 for name, make in (("dedicated", _dedicated_recorded),
                                    ("3-subset", lambda c, e: _recorded("sample3", c, e)),
                                    ("_fullHalf", lambda c, e: _recorded("fullHalf", c, e)))
                 for e in (200, 400)}
        print("\n".join(_rows(seed0)))
        ceiling = comparison_200(None) if cases == "test" else _validation_200("ceiling")
        sample3_200 = comparison_200(UNIFIED["sample3"]) if cases == "test" else _validation_200("sample3")
        ceiling_400 = _dedicated_recorded(cases, 400)
        columns = {"ceiling 200": ceiling, "ceiling 400": ceiling_400, "3-subset 200": sample3_200,
                   "3-subset 400": _recorded("sample3", cases, 400),
                   "_fullHalf 400": _recorded("fullHalf", cases, 400)}
        if cases == "test":
            columns["_fullHalf 200"] = comparison_200(UNIFIED["fullHalf"])
        columns["_fullHalf 800"] = _recorded("fullHalf", cases, 800)
        print(f"\n## {cases}, every seed at 400 epochs, region-mean Dice % (seed mean ± std)\n")
        print("\n".join(_rows(columns)))
        print("\nceiling 400, seeds recorded: " + ", ".join(
            f"{subset} {' '.join(map(str, sorted(ceiling_400(subset, 'mean')))) or '–'}"
            for subset in [*SINGLES, "Full"]))
        for epochs in (200, 400):
            pair = (f"3-subset {epochs}", f"_fullHalf {epochs}")
            if pair[1] not in columns:
                continue
            print(f"\n{cases}, {epochs} epochs: the share of the `_fullHalf` -> ceiling gap closed, "
                  f"mean of {', '.join(COVERED)} (Dice %)\n")
            print("\n".join(_shares(ceiling, columns[pair[0]], columns[pair[1]], COVERED)))
        print(f"\n{cases}, 400 epochs against the 400-epoch ceiling (equal per-model budget): the share "
              f"of the `_fullHalf` -> ceiling gap closed, mean of {', '.join(SINGLES)} (Dice %)\n")
        print("\n".join(_shares(ceiling_400, columns["3-subset 400"], columns["_fullHalf 400"], SINGLES)))
        fullhalf_200 = columns.get("_fullHalf 200", _recorded("fullHalf", cases, 200))
        print(f"\n{cases}: `_fullHalf` at 1x, 2x and 4x the demo's budget against the 400-epoch ceiling "
              "(Dice %, seed mean ± std; gap in points)\n")
        budgets = {"_fullHalf 200": fullhalf_200,
                   **{name: columns[name] for name in ("_fullHalf 400", "_fullHalf 800")}}
        print("\n".join(_budget(ceiling_400, budgets)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
