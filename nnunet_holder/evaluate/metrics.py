"""Per-case segmentation metrics: Dice and HD95 per region, with the BraTS 2017–2021 empty rules.

A case is scored region by region (WT/TC/ET for nnU-Net's BraTS region datasets, one region per
foreground label otherwise). Dice and HD95 follow the official BraTS 2017–2021 (CaPTk) conventions
for empty masks, and HD95 follows the MONAI/CaPTk definition (the larger of the two directed
95th percentiles of surface-to-surface distances), so numbers are comparable with the papers of
the field. The optional RFNet ET post-processing (small predicted ET → empty) is applied to the
prediction only. Arrays are in nnU-Net/SimpleITK order (z, y, x) and `spacing` follows the array
axes (nnU-Net's `properties["spacing"]`, not SimpleITK's `GetSpacing()`, which is (x, y, z)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

from nnunet_holder.brats import SHORT_REGION_NAMES

BRATS_EMPTY_HD95 = 373.13
"""HD95 (mm) when exactly one of prediction and reference is empty: the 240×240×155 diagonal."""

RFNET_ET_MIN_VOXELS = 500


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice of two boolean masks; both empty → 1.0, exactly one empty → 0.0 (BraTS 2017–2021)."""
    pred, gt = _as_bool_pair(pred, gt)
    n_pred, n_gt = int(pred.sum()), int(gt.sum())
    if n_pred + n_gt == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, gt).sum()) / (n_pred + n_gt)


def hd95(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> float:
    """95th-percentile Hausdorff distance in mm, MONAI/CaPTk definition, BraTS empty rules.

    Surfaces are the mask XOR its binary erosion (scipy's default cross-shaped structuring
    element, outside of the image counted as background). For every surface voxel of one mask
    the Euclidean distance (in mm, `spacing` per array axis) to the nearest surface voxel of the
    other is taken; the result is the larger of the two directed 95th percentiles (linear
    interpolation), as `monai.metrics.compute_hausdorff_distance(percentile=95, spacing=...)`.
    Both empty → 0.0, exactly one empty → `BRATS_EMPTY_HD95`.
    """
    pred, gt = _as_bool_pair(pred, gt)
    if len(spacing) != pred.ndim:
        raise ValueError(f"spacing {tuple(spacing)} does not match a {pred.ndim}-D mask")
    has_pred, has_gt = bool(pred.any()), bool(gt.any())
    if not has_pred and not has_gt:
        return 0.0
    if has_pred != has_gt:
        return BRATS_EMPTY_HD95

    # Every surface voxel, and so every nearest neighbour, lies inside the bounding box of the
    # union, and everything outside it is background, so cropping changes neither the erosion nor
    # the distances; the one-voxel margin is MONAI's crop.
    box = _bounding_box(pred | gt, margin=1)
    pred, gt = pred[box], gt[box]
    surface_pred = pred ^ ndimage.binary_erosion(pred)
    surface_gt = gt ^ ndimage.binary_erosion(gt)
    sampling = [float(s) for s in spacing]
    to_gt = ndimage.distance_transform_edt(~surface_gt, sampling=sampling)[surface_pred]
    to_pred = ndimage.distance_transform_edt(~surface_pred, sampling=sampling)[surface_gt]
    return float(max(np.percentile(to_gt, 95), np.percentile(to_pred, 95)))


def region_masks(seg: np.ndarray, regions: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """One boolean mask per region; a region is the set of label values it contains."""
    return [np.isin(seg, np.asarray(list(region))) for region in regions]


def label_regions(labels: Sequence[int]) -> list[list[int]]:
    """Regions of a label (non-region) dataset: one region per foreground label."""
    return [[int(label)] for label in labels if int(label) != 0]


def regions_from_dataset_labels(
    labels: Mapping[str, int | Sequence[int]],
) -> tuple[list[list[int]], list[str]]:
    """Regions and their names from a dataset.json `labels` entry, background left out.

    Region datasets (some values are lists) give one region per non-background entry; label
    datasets give one region per foreground label. The names of nnU-Net's BraTS converters
    ("whole tumor", ...) become WT/TC/ET; other names keep their key with spaces as underscores.
    """
    if "ignore" in labels:
        raise ValueError("datasets with an ignore label are not supported by these metrics")
    regions: list[list[int]] = []
    names: list[str] = []
    for name, value in labels.items():
        region = [int(value)] if isinstance(value, (int, np.integer)) else [int(v) for v in value]
        if region == [0]:
            continue
        regions.append(region)
        names.append(SHORT_REGION_NAMES.get(name.lower(), name.replace(" ", "_")))
    return regions, names


def postprocess_et(masks: Sequence[np.ndarray], et_index: int, min_voxels: int) -> list[np.ndarray]:
    """RFNet ET post-processing of PREDICTED region masks: ET with < min_voxels voxels → empty.

    Only the ET mask changes (as in RFNet's evaluation code, WT and TC keep those voxels).
    """
    out = list(masks)
    if int(np.count_nonzero(out[et_index])) < min_voxels:
        out[et_index] = np.zeros_like(out[et_index], dtype=bool)
    return out


def metric_columns(region_names: Sequence[str]) -> list[str]:
    """Column names in the order `evaluate_case` returns them: Dice_R, HD95_R per region."""
    return [f"{metric}_{name}" for name in region_names for metric in ("Dice", "HD95")]


def evaluate_case(
    pred_seg: np.ndarray,
    gt_seg: np.ndarray,
    regions: Sequence[Sequence[int]],
    region_names: Sequence[str],
    spacing: Sequence[float],
    et_index: int | None = None,
    postprocess_et_voxels: int | None = None,
) -> dict[str, float]:
    """Dice and HD95 of every region of one case: {"Dice_WT": ..., "HD95_WT": ..., ...}.

    `pred_seg` and `gt_seg` are label maps of the same shape. With `postprocess_et_voxels` set
    (RFNet uses `RFNET_ET_MIN_VOXELS`), the predicted region `et_index` is emptied when smaller.
    """
    if pred_seg.shape != gt_seg.shape:
        raise ValueError(f"prediction shape {pred_seg.shape} != reference shape {gt_seg.shape}")
    if len(regions) != len(region_names):
        raise ValueError(f"{len(regions)} regions but {len(region_names)} region names")
    pred_masks = region_masks(pred_seg, regions)
    gt_masks = region_masks(gt_seg, regions)
    if postprocess_et_voxels is not None:
        if et_index is None:
            raise ValueError("postprocess_et_voxels needs et_index")
        pred_masks = postprocess_et(pred_masks, et_index, postprocess_et_voxels)
    result: dict[str, float] = {}
    for name, p, g in zip(region_names, pred_masks, gt_masks, strict=True):
        result[f"Dice_{name}"] = dice(p, g)
        result[f"HD95_{name}"] = hd95(p, g, spacing)
    return result


def _as_bool_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {gt.shape}")
    return pred, gt


def _bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(int(hit[0]) - margin, 0), min(int(hit[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)
