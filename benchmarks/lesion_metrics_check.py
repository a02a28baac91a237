"""Cross-check of nnunet_holder.evaluate.lesion against the official BraTS lesion-wise implementations.

Generates synthetic multi-lesion cases in BraTS 2023 labels (1 NETC, 2 SNFH, 3 ET) with predictions
that are exact, shifted, grown, shrunk, missed, relabelled, or spotted with spurious components,
at 1 mm and anisotropic spacings; scores every case and region (WT/TC/ET) with our module and with
the official code in its own venv (lesion_reference_driver.py), and prints the agreement per
metric as Markdown: exact agreement, largest difference, and every difference with its reason.
Run it through lesion_metrics_check.sh, which builds the venvs; with `--write` the output replaces
its section of docs/lesion_metrics.md.

A difference is explained when it is fully accounted for by a known difference of definition:
for the 2023 reference, matched lesions' HD95 (surface distances, see the module docstring); every
other difference is listed as unexplained and makes the script exit with status 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from nnunet_holder.brats import REGION_NAMES, brats_regions
from nnunet_holder.evaluate.lesion import CHALLENGE_RULES, DEFAULT_CHALLENGE, lesion_scores
from nnunet_holder.evaluate.metrics import BRATS_EMPTY_HD95, dice, hd95, region_masks

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "lesion_metrics.md"
DRIVER = Path(__file__).resolve().parent / "lesion_reference_driver.py"
SHAPE = (96, 96, 64)
SPACINGS = [(1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (1.2, 0.9, 1.0), (1.0, 1.0, 2.0)]
NETC, SNFH, ET = 1, 2, 3
TOL = 1e-9
SURFACE = (
    "ours on voxel-centre surfaces with plain percentiles, the reference DeepMind's surfel-weighted ones"
)
MARK = ("<!-- lesion-check:begin -->", "<!-- lesion-check:end -->")


def _blob(rng: np.random.Generator, shape, centre, radius: float, roughness: float = 0.35) -> np.ndarray:
    """An irregular ball: a radius-normalised distance deformed by smooth noise, below 1."""
    grid = np.indices(shape, dtype=np.float32)
    axes = rng.uniform(0.75, 1.3, 3) * radius
    distance = np.sqrt(sum(((g - c) / a) ** 2 for g, c, a in zip(grid, centre, axes, strict=True)))
    noise = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma=radius / 3)
    noise /= max(float(np.abs(noise).max()), 1e-6)
    return distance * (1.0 + roughness * noise) < 1.0


def _tumour(rng: np.random.Generator) -> np.ndarray:
    """One glioma-like tumour in BraTS 2023 labels in a 40³ box: SNFH around NETC with an ET rim."""
    box = (40, 40, 40)
    centre = np.array(box) / 2
    whole = _blob(rng, box, centre, rng.uniform(9, 15))
    core = _blob(rng, box, centre + rng.normal(0, 1.5, 3), rng.uniform(4, 8)) & whole
    labels = np.where(whole, SNFH, 0).astype(np.uint8)
    if rng.random() < 0.8:  # an enhancing rim around necrosis, else a non-enhancing core
        labels[core] = ET
        labels[ndimage.binary_erosion(core, iterations=int(rng.integers(1, 3)))] = NETC
    else:
        labels[core] = NETC
    if rng.random() < 0.4:  # an enhancing satellite a few voxels off the core: grouped or not by dilation
        direction = rng.normal(size=3)
        spot = centre + direction / np.linalg.norm(direction) * rng.uniform(7, 13)
        satellite = _blob(rng, box, spot, rng.uniform(1.2, 3.0), 0.1)
        labels[satellite & ((labels == 0) | (labels == SNFH))] = ET
    return labels


def _predict(rng: np.random.Generator, tumour: np.ndarray) -> np.ndarray:
    """An imperfect prediction of one tumour: exact, shifted, grown, shrunk, missed or relabelled."""
    kind = rng.choice(["exact", "shift", "grow", "shrink", "miss", "et as netc", "mixed"])
    pred = tumour.copy()
    if kind in ("shift", "mixed"):
        pred = ndimage.shift(pred, rng.integers(-3, 4, 3), order=0)
    if kind in ("grow", "mixed"):
        pred = np.where(pred > 0, pred, np.where(ndimage.binary_dilation(pred > 0), SNFH, 0))
    if kind == "shrink":
        pred[pred != ndimage.grey_erosion(pred, size=(3, 3, 3))] = 0
    if kind == "miss":
        pred[:] = 0
    if kind in ("et as netc", "mixed"):
        et = pred == ET
        pred[et & (rng.random(pred.shape) < 0.5)] = NETC
    return pred.astype(np.uint8)


def _place(volume: np.ndarray, part: np.ndarray, corner) -> None:
    box = tuple(slice(c, c + s) for c, s in zip(corner, part.shape, strict=True))
    volume[box] = np.where(part > 0, part, volume[box])


def make_case(index: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Reference, prediction (BraTS 2023 labels) and spacing of case `index`."""
    rng = np.random.default_rng(1000 + index)
    spacing = SPACINGS[index % len(SPACINGS)]
    ref, pred = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    corners = [(2, 2, 2), (54, 2, 2), (2, 54, 22), (54, 54, 22)]
    for corner in [corners[i] for i in rng.permutation(4)[: int(rng.integers(1, 4))]]:
        tumour = _tumour(rng)
        _place(ref, tumour, corner)
        _place(pred, _predict(rng, tumour), corner)
    for _ in range(int(rng.integers(0, 4))):  # spurious components, from single voxels to blobs
        centre = rng.integers(4, np.array(SHAPE) - 4)
        size = rng.choice([0.6, 1.5, 3.0])
        pred[_blob(rng, SHAPE, centre, size, 0.1) & (pred == 0)] = rng.choice([SNFH, ET, NETC])
    for _ in range(int(rng.integers(0, 3))):  # small reference lesions, some under the threshold
        centre = rng.integers(4, np.array(SHAPE) - 4)
        lesion = _blob(rng, SHAPE, centre, rng.uniform(1.5, 3.5), 0.1) & (ref == 0)
        ref[lesion] = rng.choice([SNFH, ET])
        if rng.random() < 0.5:
            pred[lesion] = ref[lesion]
    # fixed edge cases: perfect, empty prediction, ET absent from the reference, nothing at all
    if index == 0:
        pred = ref.copy()
    elif index == 1:
        pred[:] = 0
    elif index == 2:
        ref[ref == ET] = NETC
    elif index == 3:
        ref[ref == ET] = NETC
        pred[pred == ET] = NETC
    elif index == 4:
        ref[:], pred[:] = 0, 0
    return ref, pred, spacing


@dataclass
class Difference:
    where: str
    ours: float | None
    theirs: float | None
    reason: str | None

    def signed(self) -> float:
        if self.ours is None or self.theirs is None:
            return math.nan
        return self.ours - self.theirs

    def row(self, metric: str) -> str:
        return (
            f"| {metric} | {self.where} | {_show(self.ours)} | {_show(self.theirs)} | "
            f"{self.reason or '**unexplained**'} |"
        )


@dataclass
class Agreement:
    """Agreement of one metric over all (case, region) scores; differences beyond `TOL` are kept."""

    name: str
    n: int = 0
    differences: list[Difference] = field(default_factory=list)

    def add(self, ours: float | None, theirs: float | None, where: str, reason: str | None) -> None:
        self.n += 1
        missing = [v is None or math.isnan(v) for v in (ours, theirs)]
        if all(missing):
            return
        if any(missing) or abs(ours - theirs) > TOL:
            self.differences.append(Difference(where, ours, theirs, reason))

    @property
    def unexplained(self) -> list[Difference]:
        return [d for d in self.differences if d.reason is None]

    def row(self) -> str:
        sizes = [abs(d.signed()) for d in self.differences if not math.isnan(d.signed())]
        explained = len(self.differences) - len(self.unexplained)
        median = np.median(sizes) if sizes else 0.0
        return (
            f"| {self.name} | {self.n} | {self.n - len(self.differences)} | {explained} | "
            f"{len(self.unexplained)} | {median:.3g} | {max(sizes, default=0):.4g} |"
        )


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def write_cases(work: Path, count: int) -> tuple[list[dict], dict]:
    """NIfTI files of every case (named as BraTS_evaluation expects) and the arrays as nibabel reads them."""
    (work / "ref").mkdir(parents=True, exist_ok=True)
    (work / "pred").mkdir(exist_ok=True)
    pairs, cases = [], {}
    for index in range(count):
        ref, pred, spacing = make_case(index)
        name = f"BraTS-GLI-{index:05d}-000"
        affine = np.diag([*spacing, 1.0])
        paths = {}
        for role, array in (("ref", ref), ("pred", pred)):
            paths[role] = str(work / role / f"{name}.nii.gz")
            nib.save(nib.Nifti1Image(array, affine), paths[role])
        pairs.append({"case": name, **paths})
        # the header stores the spacing as float32: score with what the official code reads
        stored = tuple(float(z) for z in nib.load(paths["ref"]).header.get_zooms())
        cases[name] = (ref, pred, stored)
    return pairs, cases


def our_scores(cases: dict) -> dict:
    rules = CHALLENGE_RULES[DEFAULT_CHALLENGE]
    out = {}
    for name, (ref, pred, spacing) in cases.items():
        out[name] = {}
        regions = brats_regions("2023")
        for region, p, g in zip(
            REGION_NAMES, region_masks(pred, regions), region_masks(ref, regions), strict=True
        ):
            score = lesion_scores(p, g, spacing, rules)
            out[name][region] = {
                "dice": score.dice,
                "hd95": score.hd95,
                "tp": score.tp,
                "fn": score.fn,
                "fp": score.fp,
                "legacy_dice": dice(p, g),
                "legacy_hd95": hd95(p, g, spacing),
                "lesions": [
                    list(x)
                    for x in zip(score.lesion_volume_mm3, score.lesion_dice, score.lesion_hd95, strict=True)
                ],
            }
    return out


def _paired_lesions(ours: list, theirs: list) -> list[tuple[list, list]] | None:
    """Lesions paired by (volume, Dice); None when they do not pair up. Volumes agree to float32
    rounding (the reference multiplies by float32 voxel sizes), Dice exactly."""
    if len(ours) != len(theirs):
        return None
    pairs = list(zip(sorted(ours), sorted(theirs), strict=True))
    if any(abs(a[0] - b[0]) > 1e-6 * a[0] or abs(a[1] - b[1]) > TOL for a, b in pairs):
        return None
    return pairs


def compare_2023(ours: dict, theirs: dict) -> tuple[list[Agreement], Agreement]:
    names = ["Lesion-wise Dice", "Lesion-wise HD95", "TP lesions", "FN lesions", "FP components"]
    agreements = {n: Agreement(n) for n in names}
    legacy = [Agreement("Legacy Dice (whole region)"), Agreement("Legacy HD95 (whole region)")]
    per_lesion = Agreement("Per-lesion HD95 of matched lesions")
    for case in ours:
        for region in REGION_NAMES:
            a, b = ours[case][region], theirs[case][region]
            where = f"{case} {region}"
            paired = _paired_lesions(a["lesions"], b["lesions"])
            same_structure = paired is not None and all(a[k] == b[k] for k in ("tp", "fn", "fp"))
            hd_reason = None
            if same_structure and a["tp"] + a["fn"] + a["fp"] > 0:
                accounted = sum(x[2] - y[2] for x, y in paired) / (a["tp"] + a["fn"] + a["fp"])
                if abs((a["hd95"] - b["hd95"]) - accounted) <= TOL:
                    hd_reason = "matched lesions' HD95 only (HD95 definition)"
                for x, y in paired:
                    if x[2] != 374.0:
                        per_lesion.add(x[2], y[2], where, "HD95 definition")
            agreements["Lesion-wise Dice"].add(a["dice"], b["dice"], where, None)
            agreements["Lesion-wise HD95"].add(a["hd95"], b["hd95"], where, hd_reason)
            for key, name in (("tp", "TP lesions"), ("fn", "FN lesions"), ("fp", "FP components")):
                agreements[name].add(a[key], b[key], where, None)
            legacy[0].add(a["legacy_dice"], b["legacy_dice"], where, None)
            one_empty = a["legacy_hd95"] == BRATS_EMPTY_HD95
            legacy[1].add(
                a["legacy_hd95"],
                b["legacy_hd95"],
                where,
                "one mask empty: 373.13 (BraTS 2017-2021) vs 374" if one_empty else "HD95 definition",
            )
    return [*agreements.values(), per_lesion, *legacy], per_lesion


def compare_brats_evaluation(ours: dict, theirs: dict) -> list[Agreement]:
    names = {
        "dice": "Lesion-wise Dice",
        "hd95": "Lesion-wise HD95",
        "tp": "TP lesions",
        "fn": "FN lesions",
        "fp": "FP components",
        "legacy_dice": "Legacy Dice (whole region)",
    }
    agreements = {k: Agreement(n) for k, n in names.items()}
    for case in ours:
        for region in REGION_NAMES:
            for key, agreement in agreements.items():
                agreement.add(
                    ours[case][region][key], theirs[case][region][key], f"{case} {region}", "definition"
                )
    return list(agreements.values())


def _table(agreements: list[Agreement]) -> list[str]:
    lines = [
        "| metric | scores | equal (±1e-9) | explained differences | unexplained | median difference | "
        "largest difference |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    return lines + [a.row() for a in agreements]


def report(
    cases: dict,
    agreements_2023: list[Agreement],
    per_lesion: Agreement,
    panoptica: list[Agreement] | None,
    environments: dict,
    args: argparse.Namespace,
) -> str:
    def versions(name: str) -> str:
        return ", ".join(f"{k} {v}" for k, v in environments[name].items())

    lines = [
        f"Measured {dt.date.today().isoformat()} by `{args.command}` on {len(cases)} synthetic cases "
        f"({SHAPE[0]}×{SHAPE[1]}×{SHAPE[2]}, spacings {sorted(set(SPACINGS))}), GLI rules "
        f"({CHALLENGE_RULES[DEFAULT_CHALLENGE]}), 3 regions each.",
        "",
        f"**Against the BraTS 2023 reference** (rachitsaluja/BraTS-2023-Metrics {args.reference_commit}; "
        f"{versions('brats2023')}):",
        "",
        *_table(agreements_2023),
    ]
    if per_lesion.n:
        diffs = [d.signed() for d in per_lesion.differences]
        lines += [
            "",
            f"Per-lesion HD95 of the {per_lesion.n} matched lesions: {per_lesion.n - len(diffs)} equal; the "
            f"others differ by {min(diffs, default=0):+.3f} to {max(diffs, default=0):+.3f} mm "
            f"(ours − official), mean |difference| {np.mean(np.abs(diffs)) if diffs else 0:.3f} mm.",
        ]
    lesion_wise = agreements_2023[:5]
    lines += ["", f"Every lesion-wise difference (HD95 definition: {SURFACE}):", ""]
    rows = [d.row(a.name) for a in lesion_wise for d in a.differences]
    header = ["| metric | case, region | ours | official | reason |", "|---|---|---:|---:|---|"]
    lines += header + rows if rows else ["none"]
    if panoptica is not None:
        lines += [
            "",
            f"**Against BraTS_evaluation** (config `gli`, parser `seg`; {versions('brats-evaluation')}):",
            "",
            *_table(panoptica),
        ]
    return "\n".join(lines) + "\n"


def _write(section: str) -> None:
    text = DOC.read_text()
    begin, end = text.index(MARK[0]) + len(MARK[0]), text.index(MARK[1])
    DOC.write_text(text[:begin] + "\n" + section + text[end:])


def _official(python: str, mode: str, work: Path, *options: str) -> tuple[dict, dict]:
    """Run the driver in its venv; returns (results, package versions)."""
    out = work / f"{mode}.json"
    subprocess.run(
        [python, str(DRIVER), mode, "--pairs", str(work / "pairs.json"), "--out", str(out), *options],
        check=True,
    )
    data = json.loads(out.read_text())
    return data["results"], data["versions"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for the cases and results")
    parser.add_argument("--reference-python", required=True, help="python of the BraTS 2023 reference venv")
    parser.add_argument("--reference-src", required=True, help="checkout of rachitsaluja/BraTS-2023-Metrics")
    parser.add_argument("--reference-commit", required=True, help="its commit, named in the output")
    parser.add_argument("--panoptica-python", help="python of a venv with BraTS_evaluation (optional)")
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--command", default="benchmarks/lesion_metrics_check.sh", help="named in the output")
    parser.add_argument("--write", action="store_true", help="replace the section in docs/lesion_metrics.md")
    args = parser.parse_args()

    pairs, cases = write_cases(args.work, args.cases)
    (args.work / "pairs.json").write_text(json.dumps(pairs))
    print(f"scoring {len(cases)} cases with our module", file=sys.stderr)
    ours = our_scores(cases)
    rules = CHALLENGE_RULES[DEFAULT_CHALLENGE]
    print("scoring them with the BraTS 2023 reference", file=sys.stderr)
    environments = {}
    theirs, environments["brats2023"] = _official(
        args.reference_python,
        "brats2023",
        args.work,
        *("--source", args.reference_src, "--dilation", str(rules.dilation)),
        *("--threshold", str(rules.min_volume_mm3)),
    )
    agreements, per_lesion = compare_2023(ours, theirs)
    panoptica = None
    if args.panoptica_python:
        print("scoring them with BraTS_evaluation", file=sys.stderr)
        theirs, environments["brats-evaluation"] = _official(
            args.panoptica_python, "brats-evaluation", args.work
        )
        panoptica = compare_brats_evaluation(ours, theirs)
    section = report(cases, agreements, per_lesion, panoptica, environments, args)
    print(section)
    if args.write:
        _write(section)
    return 1 if any(a.unexplained for a in agreements[:5]) else 0


if __name__ == "__main__":
    sys.exit(main())
