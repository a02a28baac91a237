"""Scores the cross-check's cases with an official BraTS implementation, inside its own isolated venv.

Started by lesion_metrics_check.py with the python of a venv that lesion_metrics_check.sh built;
imports nothing of nnunet-holder. Reads the case list (JSON: [{"case", "pred", "ref"}], NIfTI
paths) and writes one JSON of results per case and region (WT/TC/ET).

- `brats2023`: rachitsaluja/BraTS-2023-Metrics (`metrics.py` from --source, the BraTS 2023 Synapse
  scoring): its `get_LesionWiseResults` for the case scores and counts, and its `get_LesionWiseScores`
  for the per-lesion (volume, Dice, HD95) of the lesions above --threshold.
- `brats-evaluation`: the BraTS_evaluation package (panoptica), its bundled config `gli` and its
  `seg` parser, exactly as `brats-evaluate --config gli` then `brats-parse-metrics seg` run.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from importlib import metadata
from pathlib import Path

REGIONS = ("WT", "TC", "ET")
PACKAGES = {
    "brats2023": ("connected-components-3d", "nibabel", "numpy", "pandas", "scipy"),
    "brats-evaluation": ("BraTS_evaluation", "panoptica", "connected-components-3d", "numpy", "scipy"),
}
PENALTY = 374.0  # the 2023 reference replaces an infinite HD95 by this in its tables


def _finite(value: float) -> float:
    value = float(value)
    return PENALTY if math.isinf(value) else value


def brats2023(pairs: list[dict], source: str, challenge: str, dilation: int, threshold: float) -> dict:
    sys.path.insert(0, source)
    import metrics  # the reference's module, from --source

    results = {}
    for pair in pairs:
        table = metrics.get_LesionWiseResults(pair["pred"], pair["ref"], challenge)
        rows = {row["Labels"]: row for row in table.to_dict("records")}
        case = {}
        for region in REGIONS:
            lesion_rows = metrics.get_LesionWiseScores(pair["pred"], pair["ref"], region, dilation)[4]
            row = rows[region]
            case[region] = {
                "dice": float(row["LesionWise_Score_Dice"]),
                "hd95": float(row["LesionWise_Score_HD95"]),
                "tp": int(row["Num_TP"]),
                "fn": int(row["Num_FN"]),
                "fp": int(row["Num_FP"]),
                "legacy_dice": float(row["Legacy_Dice"]),
                "legacy_hd95": _finite(row["Legacy_HD95"]),
                # (intersecting components, lesion number, volume, Dice, HD95) per reference lesion
                "lesions": [
                    [float(volume), float(d), _finite(h)]
                    for _, _, volume, d, h in lesion_rows
                    if volume > threshold
                ],
            }
        results[pair["case"]] = case
    return results


def brats_evaluation(pairs: list[dict], work: Path) -> dict:
    from brats_evaluation import config_path, evaluate_single_exam, parse_seg_results
    from panoptica import Panoptica_Evaluator

    evaluator = Panoptica_Evaluator.load_from_config(str(config_path("gli")))
    raw = {"metrics": [], "missings": []}
    for pair in pairs:
        result = evaluate_single_exam(pair["pred"], pair["ref"], pair["case"], evaluator)
        if "error" in result:
            raise SystemExit(f"BraTS_evaluation failed on {pair['case']}: {result['error']}")
        raw["metrics"].append(result)
    summary, table = work / "brats_evaluation_summary.json", work / "brats_evaluation_seg.csv"
    summary.write_text(json.dumps(raw, default=float))
    parse_seg_results(str(summary), str(table))
    with table.open(newline="") as f:
        rows = {row["subject_id"]: row for row in csv.DictReader(f)}

    def number(row: dict, key: str) -> float | None:
        return float(row[key]) if row.get(key) not in (None, "") else None

    results = {}
    for pair in pairs:
        row = rows[pair["case"]]
        results[pair["case"]] = {
            region: {
                "dice": number(row, f"lesionwise_dsc_mean_{region.lower()}"),
                "hd95": number(row, f"lesionwise_hd95_mean_{region.lower()}"),
                "tp": number(row, f"all_instance_tp_{region.lower()}"),
                "fn": number(row, f"all_instance_fn_{region.lower()}"),
                "fp": number(row, f"all_instance_fp_{region.lower()}"),
                "legacy_dice": number(row, f"global_dsc_{region.lower()}"),
                "legacy_hd95": number(row, f"global_hd95_{region.lower()}"),
            }
            for region in REGIONS
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["brats2023", "brats-evaluation"])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--source", help="checkout of rachitsaluja/BraTS-2023-Metrics (brats2023)")
    parser.add_argument("--challenge", default="BraTS-GLI")
    parser.add_argument("--dilation", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=50.0)
    args = parser.parse_args()
    pairs = json.loads(args.pairs.read_text())
    if args.mode == "brats2023":
        results = brats2023(pairs, args.source, args.challenge, args.dilation, args.threshold)
    else:
        results = brats_evaluation(pairs, args.out.parent)
    versions = {"python": sys.version.split()[0], **{p: metadata.version(p) for p in PACKAGES[args.mode]}}
    args.out.write_text(json.dumps({"results": results, "versions": versions}))


if __name__ == "__main__":
    main()
