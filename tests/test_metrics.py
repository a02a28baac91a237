"""Dice and HD95 against MONAI (the independent reference), BraTS empty rules, regions, ET post-processing.

Only the cross-checks against MONAI need MONAI (a test dependency): without it they skip, and
every other test still runs.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from nnunet_holder.brats import NNUNET_REGIONS, REGION_NAMES
from nnunet_holder.evaluate.metrics import (
    BRATS_EMPTY_HD95,
    dice,
    evaluate_case,
    hd95,
    label_regions,
    metric_columns,
    postprocess_et,
    region_masks,
    regions_from_dataset_labels,
)

# MONAI stores surface distances as float32, so it differs from our float64 by rounding only
HD95_TOL_MM = 1e-4
SPACINGS = [(1.0, 1.0, 1.0), (2.5, 1.0, 0.8)]


def monai_hd95(pred: np.ndarray, gt: np.ndarray, spacing) -> float:
    monai_metrics = pytest.importorskip("monai.metrics")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's deprecation notices
        out = monai_metrics.compute_hausdorff_distance(
            torch.from_numpy(pred)[None, None],
            torch.from_numpy(gt)[None, None],
            include_background=True,
            percentile=95,
            spacing=tuple(float(s) for s in spacing),
        )
    return float(out.item())


def monai_dice(pred: np.ndarray, gt: np.ndarray) -> float:
    monai_metrics = pytest.importorskip("monai.metrics")
    out = monai_metrics.compute_dice(
        torch.from_numpy(pred)[None, None].float(),
        torch.from_numpy(gt)[None, None].float(),
        include_background=True,
        ignore_empty=False,
    )
    return float(out.item())


def random_masks(rng: np.random.Generator, shape) -> tuple[np.ndarray, np.ndarray]:
    return rng.random(shape) < 0.3, rng.random(shape) < 0.1


def ellipsoid(shape, centre, radii) -> np.ndarray:
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1.0


def ellipsoids(rng: np.random.Generator, shape) -> tuple[np.ndarray, np.ndarray]:
    def one():
        centre = [rng.uniform(0.35, 0.65) * n for n in shape]
        radii = [rng.uniform(0.15, 0.3) * n for n in shape]
        return ellipsoid(shape, centre, radii)

    return one(), one()


def blobs(rng: np.random.Generator, shape) -> tuple[np.ndarray, np.ndarray]:
    base = ndimage.gaussian_filter(rng.standard_normal(shape), 2.5)
    other = base + 0.5 * ndimage.gaussian_filter(rng.standard_normal(shape), 2.5)
    return base > 0.05, other > 0.08


def touching_border(rng: np.random.Generator, shape) -> tuple[np.ndarray, np.ndarray]:
    """Masks cut by the image border, where the one-voxel crop margin is clipped."""
    pred = ellipsoid(shape, [0, shape[1] / 2, shape[2] - 1], [n * 0.4 for n in shape])
    gt = ellipsoid(shape, [2, shape[1] / 2 + 1, shape[2] - 3], [n * 0.35 for n in shape])
    return pred, gt


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("make", [random_masks, ellipsoids, blobs, touching_border])
def test_hd95_and_dice_match_monai(make, spacing):
    rng = np.random.default_rng(list(f"{make.__name__}{spacing}".encode()))
    for shape in [(24, 28, 20), (17, 33, 26)]:
        pred, gt = make(rng, shape)
        assert pred.any() and gt.any() and (pred != gt).any()
        assert hd95(pred, gt, spacing) == pytest.approx(monai_hd95(pred, gt, spacing), abs=HD95_TOL_MM)
        assert dice(pred, gt) == pytest.approx(monai_dice(pred, gt), abs=1e-6)
        expected_dice = 2 * np.sum(pred & gt) / (pred.sum() + gt.sum())
        assert dice(pred, gt) == pytest.approx(expected_dice, rel=1e-12)


def test_hd95_matches_monai_in_2d():
    rng = np.random.default_rng(3)
    pred, gt = rng.random((40, 30)) < 0.2, rng.random((40, 30)) < 0.2
    assert hd95(pred, gt, (0.7, 1.9)) == pytest.approx(monai_hd95(pred, gt, (0.7, 1.9)), abs=HD95_TOL_MM)


def test_hd95_does_not_depend_on_the_crop():
    rng = np.random.default_rng(5)
    pred, gt = blobs(rng, (20, 22, 18))
    big_pred = np.zeros((50, 40, 45), bool)
    big_gt = np.zeros_like(big_pred)
    big_pred[10:30, 9:31, 20:38] = pred
    big_gt[10:30, 9:31, 20:38] = gt
    spacing = (2.5, 1.0, 0.8)
    assert hd95(big_pred, big_gt, spacing) == pytest.approx(hd95(pred, gt, spacing), abs=1e-9)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_hd95_uses_spacing_per_array_axis(axis):
    spacing = (2.5, 1.0, 0.8)
    pred = np.zeros((9, 9, 9), bool)
    gt = np.zeros_like(pred)
    pred[4, 4, 4] = True
    index = [4, 4, 4]
    index[axis] += 3
    gt[tuple(index)] = True
    assert hd95(pred, gt, spacing) == pytest.approx(3 * spacing[axis])


def test_hd95_rejects_wrong_spacing_length():
    mask = np.ones((3, 3, 3), bool)
    with pytest.raises(ValueError, match="spacing"):
        hd95(mask, mask, (1.0, 1.0))


@pytest.mark.parametrize(
    ("pred_any", "gt_any", "expected_dice", "expected_hd95"),
    [
        (False, False, 1.0, 0.0),
        (True, False, 0.0, BRATS_EMPTY_HD95),
        (False, True, 0.0, BRATS_EMPTY_HD95),
        (True, True, 1.0, 0.0),
    ],
)
def test_brats_empty_rules(pred_any, gt_any, expected_dice, expected_hd95):
    pred = np.zeros((6, 7, 8), bool)
    gt = np.zeros_like(pred)
    pred[2:4, 2:5, 3:6] = pred_any
    gt[2:4, 2:5, 3:6] = gt_any
    assert dice(pred, gt) == expected_dice
    assert hd95(pred, gt, (1.0, 2.0, 3.0)) == expected_hd95


def test_brats_empty_hd95_is_the_brats_volume_diagonal():
    assert BRATS_EMPTY_HD95 == pytest.approx(np.sqrt(240**2 + 240**2 + 155**2), abs=0.01)


def test_region_masks_on_brats_regions():
    seg = np.array([[0, 1, 2], [3, 1, 0], [2, 3, 3]])
    wt, tc, et = region_masks(seg, NNUNET_REGIONS)
    np.testing.assert_array_equal(wt, (seg == 1) | (seg == 2) | (seg == 3))
    np.testing.assert_array_equal(tc, (seg == 2) | (seg == 3))
    np.testing.assert_array_equal(et, seg == 3)
    assert REGION_NAMES == ("WT", "TC", "ET")


def test_label_regions_one_per_foreground_label():
    assert label_regions([0, 1, 2, 4]) == [[1], [2], [4]]
    seg = np.array([0, 1, 2, 4, 4])
    masks = region_masks(seg, label_regions([0, 1, 2, 4]))
    np.testing.assert_array_equal(masks[2], seg == 4)


def test_regions_from_dataset_labels():
    region_labels = {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3}
    assert regions_from_dataset_labels(region_labels) == ([[1, 2, 3], [2, 3], [3]], ["WT", "TC", "ET"])
    plain = {"background": 0, "left kidney": 1, "tumour": 2}
    assert regions_from_dataset_labels(plain) == ([[1], [2]], ["left_kidney", "tumour"])
    with pytest.raises(ValueError, match="ignore"):
        regions_from_dataset_labels({"background": 0, "a": 1, "ignore": 2})


def test_postprocess_et_empties_small_et_only():
    wt = np.ones((4, 4), bool)
    tc = np.zeros((4, 4), bool)
    tc[:2] = True
    et = np.zeros((4, 4), bool)
    et[0, :3] = True  # 3 voxels
    out = postprocess_et([wt, tc, et], et_index=2, min_voxels=4)
    assert not out[2].any()
    np.testing.assert_array_equal(out[0], wt)
    np.testing.assert_array_equal(out[1], tc)
    assert et.sum() == 3  # the input is not modified
    kept = postprocess_et([wt, tc, et], et_index=2, min_voxels=3)  # RFNet: only "< min" is removed
    np.testing.assert_array_equal(kept[2], et)


def test_evaluate_case_postprocesses_the_prediction_only():
    gt = np.zeros((8, 10, 12), np.uint8)
    gt[2:6, 2:8, 2:9] = 1
    gt[3:5, 3:6, 3:7] = 2
    gt[4, 4, 4:6] = 3  # a 2-voxel ET in the reference
    pred = gt.copy()
    spacing = (2.5, 1.0, 0.8)
    names = list(REGION_NAMES)

    plain = evaluate_case(pred, gt, NNUNET_REGIONS, names, spacing)
    assert list(plain) == metric_columns(names)
    assert all(plain[f"Dice_{r}"] == 1.0 and plain[f"HD95_{r}"] == 0.0 for r in names)

    post = evaluate_case(pred, gt, NNUNET_REGIONS, names, spacing, et_index=2, postprocess_et_voxels=3)
    # had the reference been post-processed too, both ETs would be empty and Dice_ET would be 1
    assert post["Dice_ET"] == 0.0
    assert post["HD95_ET"] == BRATS_EMPTY_HD95
    assert {k: v for k, v in post.items() if not k.endswith("_ET")} == {
        k: v for k, v in plain.items() if not k.endswith("_ET")
    }


def test_evaluate_case_matches_per_region_metrics():
    rng = np.random.default_rng(11)
    shape = (16, 20, 18)
    gt = rng.integers(0, 4, size=shape)
    pred = np.where(rng.random(shape) < 0.2, rng.integers(0, 4, size=shape), gt)
    spacing = (1.0, 1.5, 0.7)
    result = evaluate_case(pred, gt, NNUNET_REGIONS, REGION_NAMES, spacing)
    for name, region in zip(REGION_NAMES, NNUNET_REGIONS, strict=True):
        p, g = np.isin(pred, region), np.isin(gt, region)
        assert result[f"Dice_{name}"] == pytest.approx(monai_dice(p, g), abs=1e-6)
        assert result[f"HD95_{name}"] == pytest.approx(monai_hd95(p, g, spacing), abs=HD95_TOL_MM)


def test_evaluate_case_argument_checks():
    seg = np.zeros((3, 3, 3), np.uint8)
    with pytest.raises(ValueError, match="et_index"):
        evaluate_case(seg, seg, NNUNET_REGIONS, REGION_NAMES, (1, 1, 1), postprocess_et_voxels=500)
    with pytest.raises(ValueError, match="shape"):
        evaluate_case(seg, seg[:2], NNUNET_REGIONS, REGION_NAMES, (1, 1, 1))
    with pytest.raises(ValueError, match="region names"):
        evaluate_case(seg, seg, NNUNET_REGIONS, ["WT"], (1, 1, 1))


MONAI_CROSS_CHECKS = (
    "test_hd95_and_dice_match_monai",
    "test_hd95_matches_monai_in_2d",
    "test_evaluate_case_matches_per_region_metrics",
)


def test_without_monai_only_the_monai_cross_checks_skip(tmp_path):
    # this file's tests in a Python where `import monai` fails (None in sys.modules)
    report = tmp_path / "report.xml"
    args = [__file__, "-q", "-p", "no:cacheprovider", "-k", "not without_monai", f"--junitxml={report}"]
    run = f"import sys; sys.modules['monai'] = None; import pytest; sys.exit(pytest.main({args!r}))"
    root = Path(__file__).parent.parent
    proc = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stdout[-3000:]
    cases = ET.parse(report).getroot().iter("testcase")
    skipped = {c.get("name").split("[")[0]: c.find("skipped") is not None for c in cases}
    assert "test_brats_empty_rules" in skipped
    assert {name for name, s in skipped.items() if s} == set(MONAI_CROSS_CHECKS)
