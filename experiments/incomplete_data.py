"""Arms of the incomplete-training-data measurement in one table (issue 33 item 4).

Each arm is LABEL=COMPARISON.json:MODEL, a model of a `compare` report; the arms may come from
comparisons of different datasets (the complete cases only, all cases with the absent channels
recorded) when those share their test cases (`synth --keep-complete N` with `convert-brats
--num-test N` makes them the same N cases; the script checks the count, the configuration, the
fold and the mirroring). It prints, per arm, the seed mean ± std of the Dice % on the mean over
the 14 missing-modality subsets (per region and their mean), on the full set, and on each single
modality, then every arm against the first on the missing subsets' region mean and on the full
set: the mean of the per-seed differences and a verdict by the rule of `compare` (a difference
inside the larger of the two arms' seed stds is no difference).
usage: python experiments/incomplete_data.py LABEL=COMPARISON.json:MODEL [LABEL=...]...
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from nnunet_holder.compare.stats import SeedStat, paired, spread

REGIONS = ("WT", "TC", "ET", "mean")


def load_arm(spec: str) -> tuple[str, dict, dict]:
    label, _, rest = spec.partition("=")
    path, _, model = rest.rpartition(":")
    comparison = json.loads(Path(path).read_text())
    if model not in comparison["models"]:
        raise SystemExit(f"{spec}: no model {model} in {path} (it has {', '.join(comparison['models'])})")
    return label, comparison, comparison["models"][model]


def stat(per_seed: dict) -> SeedStat:
    return SeedStat(tuple(100 * per_seed[s] for s in sorted(per_seed, key=int)))


def cell(s: SeedStat) -> str:
    return f"{s.mean:.1f} ± {s.std:.1f}" if not math.isnan(s.std) else f"{s.mean:.1f}"


def main(specs: list[str]) -> None:
    arms = [load_arm(spec) for spec in specs]
    shared = {(c["test_cases"], c["configuration"], c["fold"], c["mirroring"]) for _, c, _ in arms}
    if len(shared) != 1:
        raise SystemExit(f"the arms differ in test cases, configuration, fold or mirroring: {sorted(shared)}")
    subsets = arms[0][1]["subsets"]
    singles = [s for s in subsets if "+" not in s and not s.startswith("~") and s != subsets[-1]]
    header = ["arm", "seeds", *(f"missing {r}" for r in REGIONS), "full (mean)", *singles]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, _, model in arms:
        missing = [cell(stat(model["groups"]["missing"][r]["per_seed"])) for r in REGIONS]
        full = cell(stat(model["groups"]["full"]["mean"]["per_seed"]))
        single_cells = [cell(stat(model["subsets"][s]["mean"])) for s in singles]
        print(f"| {label} | {len(model['seeds'])} | " + " | ".join([*missing, full, *single_cells]) + " |")
    print()
    first_label, _, first = arms[0]
    for label, _, model in arms[1:]:
        for group in ("missing", "full"):
            a = {s: 100 * v for s, v in model["groups"][group]["mean"]["per_seed"].items()}
            b = {s: 100 * v for s, v in first["groups"][group]["mean"]["per_seed"].items()}
            diff = paired(a, b)
            limit = spread(
                stat(model["groups"][group]["mean"]["per_seed"]),
                stat(first["groups"][group]["mean"]["per_seed"]),
            )
            judged = "no difference" if abs(diff.mean) <= limit else ("better" if diff.mean > 0 else "worse")
            print(
                f"- {label} vs {first_label}, {group} (region mean): {diff.mean:+.1f} points "
                f"(per seed {', '.join(f'{d:+.1f}' for d in diff.values)}; spread {limit:.1f}): {judged}"
            )


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
