"""Region means of `evaluate-subsets` tables, for choosing a variant on the validation cases.

Each argument is LABEL=FOLDER, FOLDER an `evaluate-subsets` output (its subset_table.json). Prints,
per label, the Dice % (WT / TC / ET / mean of the three) averaged over the four single modalities,
over the 14 missing-modality subsets, and on the full set.
usage: python experiments/validation_summary.py LABEL=FOLDER [LABEL=FOLDER ...]
"""

import json
import sys
from pathlib import Path

from nnunet_holder.brats import REGION_NAMES
from nnunet_holder.file_names import SUBSET_TABLE


def region_means(table: dict, subsets: list[str]) -> list[float]:
    per_region = [
        100 * sum(table[s][f"Dice_{r}"]["mean"] for s in subsets) / len(subsets) for r in REGION_NAMES
    ]
    return per_region + [sum(per_region) / len(per_region)]


def cells(values: list[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


print("| model | single modalities (WT / TC / ET / mean) | 14 missing subsets | full set |")
print("|---|---|---|---|")
for argument in sys.argv[1:]:
    label, folder = argument.split("=", 1)
    with open(Path(folder) / SUBSET_TABLE) as f:
        table = json.load(f)
    order = table["order"]
    singles = [s for s in order if "+" not in s and not s.startswith("~") and s != "Full"]
    missing = [s for s in order if s != "Full"]
    parts = [region_means(table, singles), region_means(table, missing), region_means(table, ["Full"])]
    print(f"| {label} | " + " | ".join(cells(p) for p in parts) + " |")
