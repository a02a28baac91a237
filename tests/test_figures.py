"""The heatmap and the overlay figure are written, readable and non-trivial; the package stays light."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

from nnunet_holder.evaluate.figures import dice_heatmap, overlay_figure, tumour_slice
from nnunet_holder.evaluate.metrics import metric_columns
from nnunet_holder.evaluate.tables import paper_subset_order, summarise

BRATS = ("T1", "T1c", "T2", "Fl")


def assert_nontrivial_png(path):
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    colours = np.unique(image.reshape(-1, image.shape[-1]), axis=0)
    assert len(colours) > 10


def synthetic_case(shape=(12, 48, 40), seed=0):
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    brain = sum(((g - n / 2) / (0.45 * n)) ** 2 for g, n in zip(grid, shape, strict=True)) < 1
    tumour = ((grid[0] - 7) / 4) ** 2 + ((grid[1] - 20) / 9) ** 2 + ((grid[2] - 24) / 8) ** 2
    gt = np.select([tumour < 0.25, tumour < 0.5, tumour < 1], [3, 2, 1], 0).astype(np.uint8)
    images = {m: brain * (1 + i + rng.random(shape)) + (gt > 0) * i for i, m in enumerate(BRATS)}
    preds = {}
    for k, name in enumerate([*BRATS, "Full"]):
        shifted = np.roll(gt, k - 2, axis=2)
        preds[name] = shifted
    return images, gt, preds


def test_dice_heatmap_is_written(tmp_path):
    order = paper_subset_order(BRATS)
    rng = np.random.default_rng(0)
    columns = metric_columns(["WT", "TC", "ET"])
    rows = [
        {"case": f"c{c}", "subset": s, **{m: float(rng.uniform()) for m in columns}}
        for c in range(2)
        for s in order
    ]
    summary = summarise(rows, order, columns, BRATS)
    path = dice_heatmap(summary, tmp_path / "figs" / "heatmap.png", title="test")
    assert path.is_file()
    assert_nontrivial_png(path)


def test_overlay_figure_is_written(tmp_path):
    images, gt, preds = synthetic_case()
    path = overlay_figure(
        images, gt, preds, tmp_path / "overlay.png", region_labels={1: "ED", 2: "NCR", 3: "ET"}
    )
    assert path.is_file()
    assert_nontrivial_png(path)


def test_overlay_needs_every_single_modality_and_full(tmp_path):
    images, gt, preds = synthetic_case()
    del preds["T2"]
    with pytest.raises(ValueError, match="T2"):
        overlay_figure(images, gt, preds, tmp_path / "overlay.png")


def test_tumour_slice_is_the_largest_axial_area():
    gt = np.zeros((5, 6, 6), np.uint8)
    gt[1, :2, :2] = 1  # 4 voxels
    gt[3, :3, :3] = 3  # 9 voxels
    gt[4, 0, :5] = 2  # 5 voxels
    assert tumour_slice(gt) == 3
    assert tumour_slice(np.zeros((7, 3, 3))) == 3


def test_importing_the_evaluation_package_does_not_import_matplotlib():
    code = (
        "import sys, nnunet_holder.evaluate, nnunet_holder.evaluate.metrics, nnunet_holder.evaluate.tables; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
