"""The recommended trainer at 1x and 2x the demo budget against the dedicated ceiling (issue 32 item 3).

Reads a `compare --dedicated` comparison.json (the ceiling, the unified model at 1x) and the
comparison.json of the same unified model at another budget on the same test cases, and prints, per
covered subset and region, the seed mean ± std of each and the share of the vanilla -> ceiling gap
each closes.
usage: python experiments/ceiling_budget.py CEILING.json MODEL OTHER.json OTHER_MODEL [LABEL]
"""

import json
import sys

import numpy as np

ceiling_file, model, other_file, other_model = sys.argv[1:5]
label = sys.argv[5] if len(sys.argv) > 5 else "2x"
with open(ceiling_file) as f:
    c = json.load(f)
with open(other_file) as f:
    o = json.load(f)
ceiling = c["ceiling"]
vanilla = ceiling["trainer"]
regions = ["WT", "TC", "ET", "mean"]


def seeds(d):
    return np.array([d[s] for s in sorted(d)]) * 100


def cell(v):
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if len(v) > 1 else f"{v.mean():.1f}"


rows = {}
for subset, by_region in ceiling["subsets"].items():
    for r in regions:
        top = seeds(by_region[r])
        one = seeds(c["models"][model]["subsets"][subset][r])
        two = seeds(o["models"][other_model]["subsets"][subset][r])
        van = seeds(c["models"][vanilla]["subsets"][subset][r])
        rows[(subset, r)] = (top, one, two, van)

print(
    f"| subset | region | ceiling (dedicated) | {model} | {other_model} ({label}) | {vanilla} zero-filled "
    f"| gap 1x | gap {label} | closed 1x | closed {label} |"
)
print("|---|---|---|---|---|---|---|---|---|---|")
singles = [s for s in ceiling["subsets"] if "+" not in s and not s.startswith("~") and s != "Full"]
groups = {**{s: [s] for s in ceiling["subsets"]}, "mean of " + ", ".join(singles): singles}
for name, members in groups.items():
    for r in regions:
        top, one, two, van = (np.mean([rows[(s, r)][i] for s in members], axis=0) for i in range(4))
        closed = [(v.mean() - van.mean()) / (top.mean() - van.mean()) for v in (one, two)]
        print(
            f"| {name} | {r} | {cell(top)} | {cell(one)} | {cell(two)} | {cell(van)} | "
            f"{top.mean() - one.mean():.1f} | {top.mean() - two.mean():.1f} | "
            f"{100 * closed[0]:.0f} % | {100 * closed[1]:.0f} % |"
        )
