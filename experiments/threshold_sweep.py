"""Dice of each BraTS region against the sigmoid threshold, from predictions saved with probabilities.

Whether a gap in Dice is a calibration offset (a model that segments the right shape at another
probability level, which a threshold would fix) or a discriminative one. Reads the CASE.npz
files that `nnunet-holder predict --save_probabilities` writes for a region-trained dataset
(probabilities (3, z, y, x): WT, TC, ET) and the CASE.nii.gz labels of the same cases (BraTS
labels in nnU-Net's numbering), and prints for each folder the mean Dice per region at each
threshold and the predicted-to-true volume ratio at 0.5 (docs/records/ceiling.md).

    python experiments/threshold_sweep.py --labels VAL/labels PRED_FOLDER [PRED_FOLDER ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np

from nnunet_holder.brats import NNUNET_REGIONS, REGION_NAMES
from nnunet_holder.evaluate.metrics import dice

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6)
REGIONS = dict(zip(REGION_NAMES, NNUNET_REGIONS, strict=True))


def sweep(folder: Path, labels: Path) -> dict[str, dict[float, float]]:
    """Mean Dice per region and threshold over the folder's cases, and each region's volume ratio."""
    scores: dict[str, dict[float, list[float]]] = {r: {t: [] for t in THRESHOLDS} for r in REGIONS}
    ratios: dict[str, list[float]] = {r: [] for r in REGIONS}
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise SystemExit(f"{folder}: no CASE.npz files (predict with --save_probabilities)")
    for npz in files:
        label_file = labels / f"{npz.stem}.nii.gz"
        if not label_file.is_file():
            raise SystemExit(f"{npz}: no label {label_file}")
        # nnU-Net saves probabilities as (C, z, y, x); nibabel reads the label as (x, y, z)
        probabilities = np.load(npz)["probabilities"]
        label = np.asarray(nib.load(label_file).dataobj).transpose(2, 1, 0)
        for r, (name, values) in enumerate(REGIONS.items()):
            truth = np.isin(label, values)
            for t in THRESHOLDS:
                scores[name][t].append(dice(probabilities[r] > t, truth))
            ratios[name].append(float((probabilities[r] > 0.5).sum()) / max(int(truth.sum()), 1))
    out = {name: {t: 100 * float(np.mean(v)) for t, v in by_t.items()} for name, by_t in scores.items()}
    for name in REGIONS:
        out[name]["volume_ratio"] = float(np.mean(ratios[name]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, required=True, help="folder of CASE.nii.gz labels")
    parser.add_argument("folders", type=Path, nargs="+", help="prediction folders with CASE.npz")
    args = parser.parse_args()
    thresholds = " | ".join(f"t = {t}" for t in THRESHOLDS)
    print(f"| predictions | region | {thresholds} | volume ratio at 0.5 |")
    print("|---|---|" + "---:|" * (len(THRESHOLDS) + 1))
    for folder in args.folders:
        for name, row in sweep(folder, args.labels).items():
            cells = " | ".join(f"{row[t]:.1f}" for t in THRESHOLDS)
            print(f"| {folder.name} | {name} | {cells} | {row['volume_ratio']:.2f} |")


if __name__ == "__main__":
    main()
