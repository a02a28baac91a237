"""Lesion-wise Dice and HD95 per region, by the BraTS 2023 challenge definitions.

Since 2023 BraTS ranks on lesion-wise scores: each region (WT/TC/ET) is split into lesions,
prediction components are matched to them, and missed and spurious lesions are penalised. This
module follows the 2023 reference implementation (rachitsaluja/BraTS-2023-Metrics at 43c9052, the
code the BraTS 2023 Synapse scoring ran); docs/lesion_metrics.md records the cross-check against it.
The choices, per region mask of one case:

- Components: 26-connectivity (`CONNECTIVITY`), for the reference and for the prediction.
- Lesions of the reference: the reference is dilated by `LesionRules.dilation` iterations of the
  18-neighbourhood (`DILATION_STRUCTURE`, scipy's rank-2 structure); reference voxels that fall in
  one 26-connected component of that dilated mask form one lesion, so nearby fragments of one
  tumour count once (two fragments along an axis merge when at most 2·dilation voxels apart).
- Matching: a prediction component matches a lesion when it has a voxel in the lesion dilated
  alone by the same dilation. A component may match several lesions; a lesion is scored against
  the union of all its matching components, each taken whole.
- Minimum size: a lesion of at most `LesionRules.min_volume_mm3` (voxel count × voxel volume) is
  not scored, and prediction components that match only such lesions are not spurious. The 2023
  challenges used one threshold for all three regions (`CHALLENGE_RULES`, GLI: dilation 3, 50 mm³).
  Prediction components of any size can be spurious.
- Per lesion: Dice of the lesion and its matched components; HD95 as the legacy metric (metrics.py,
  MONAI/CaPTk definition). The 2023 reference uses DeepMind's surfel-area weighted HD95 here, so
  HD95 of a matched lesion may differ by a fraction of a voxel (docs/lesion_metrics.md).
- Penalties: a missed lesion scores Dice 0 and HD95 `LESION_HD95_PENALTY` (374 mm); each
  spurious prediction component adds one term of Dice 0 and HD95 374 mm.
- Score: lesion-wise Dice = Σ Dice over scored lesions / (scored lesions + spurious components),
  HD95 likewise with 374 mm per spurious component. With nothing to score (both masks empty, or
  only lesions under the threshold and no spurious component) the score is Dice 1, HD95 0.

Masks are boolean 3-D arrays in any axis order, `spacing` in mm per array axis (nnU-Net's order
for nnU-Net arrays); dilation and connectivity are counted in voxels, volumes and HD95 in mm. Regions
are sets of label values: nnU-Net's BraTS regions (`brats.NNUNET_REGIONS`) for nnU-Net label maps,
`brats.brats_regions("2023")` ({1,2,3}, {1,3}, {3}) for BraTS 2023+ label files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from nnunet_holder.evaluate.metrics import dice, hd95, postprocess_et, region_masks

LESION_HD95_PENALTY = 374.0
"""HD95 (mm) of a missed lesion and of a spurious component: the 2023 reference's constant."""

CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
"""26-connectivity of lesions and prediction components."""
DILATION_STRUCTURE = ndimage.generate_binary_structure(3, 2)
"""One dilation iteration: the 18-neighbourhood (faces and edges, not corners)."""

LESION_METRICS: tuple[str, ...] = ("LesionDice", "LesionHD95")
"""Metric kinds of `evaluate_case_lesionwise`, prefixes of its column names."""


@dataclass(frozen=True)
class LesionRules:
    """A challenge's lesion parameters: reference dilation (iterations) and minimum lesion volume."""

    dilation: int
    min_volume_mm3: float

    def __post_init__(self) -> None:
        # scipy dilates until nothing changes when asked for 0 iterations
        if int(self.dilation) != self.dilation or self.dilation < 1:
            raise ValueError(f"dilation must be a whole number of iterations >= 1, not {self.dilation}")
        if self.min_volume_mm3 < 0:
            raise ValueError(f"min_volume_mm3 must be >= 0, not {self.min_volume_mm3}")


CHALLENGE_RULES: dict[str, LesionRules] = {
    "GLI": LesionRules(dilation=3, min_volume_mm3=50.0),
    "SSA": LesionRules(dilation=3, min_volume_mm3=50.0),
    "MEN": LesionRules(dilation=1, min_volume_mm3=50.0),
    "PED": LesionRules(dilation=3, min_volume_mm3=50.0),
    "MET": LesionRules(dilation=1, min_volume_mm3=2.0),
}
"""BraTS 2023 parameters per challenge: adult glioma, Africa, meningioma, paediatric, metastases."""
DEFAULT_CHALLENGE = "GLI"


@dataclass(frozen=True)
class LesionScore:
    """Lesion-wise result of one region of one case.

    `lesion_dice`, `lesion_hd95` and `lesion_volume_mm3` hold one value per scored reference lesion
    (penalties included for missed ones); `tp` + `fn` is their number, `fp` the number of spurious
    prediction components.
    """

    dice: float
    hd95: float
    lesion_dice: tuple[float, ...]
    lesion_hd95: tuple[float, ...]
    lesion_volume_mm3: tuple[float, ...]
    tp: int
    fn: int
    fp: int


def lesion_scores(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float],
    rules: LesionRules = CHALLENGE_RULES[DEFAULT_CHALLENGE],
) -> LesionScore:
    """Lesion-wise Dice and HD95 of one region: prediction mask `pred` against reference `gt`."""
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {gt.shape}")
    if pred.ndim != 3:
        raise ValueError(f"lesion-wise metrics need 3-D masks, not {pred.ndim}-D")
    if len(spacing) != 3:
        raise ValueError(f"spacing {tuple(spacing)} does not match a 3-D mask")
    if not pred.any() and not gt.any():
        return LesionScore(1.0, 0.0, (), (), (), 0, 0, 0)

    # Everything happens within `dilation` voxels of the foreground, so a crop with that margin
    # changes no component, dilation or distance (the image border still clips as before).
    crop = _expand(_box(pred | gt), rules.dilation, pred.shape)
    pred, gt = pred[crop], gt[crop]
    lesion_map, n_lesions = ndimage.label(
        ndimage.binary_dilation(gt, DILATION_STRUCTURE, iterations=rules.dilation), CONNECTIVITY
    )
    lesion_map[~gt] = 0
    components, n_components = ndimage.label(pred, CONNECTIVITY)
    voxel_mm3 = float(np.prod([float(s) for s in spacing]))

    matched: set[int] = set()
    dices: list[float] = []
    distances: list[float] = []
    volumes: list[float] = []
    tp = 0
    for index, box in enumerate(ndimage.find_objects(lesion_map), start=1):
        reach_box = _expand(box, rules.dilation, gt.shape)
        lesion_near = lesion_map[reach_box] == index
        reach = ndimage.binary_dilation(lesion_near, DILATION_STRUCTURE, iterations=rules.dilation)
        hits = np.unique(components[reach_box][reach])
        hits = hits[hits > 0]
        matched.update(int(h) for h in hits)
        volume = np.count_nonzero(lesion_near) * voxel_mm3
        if volume <= rules.min_volume_mm3:
            continue
        volumes.append(volume)
        lesion = lesion_map == index
        if hits.size:
            predicted = np.isin(components, hits)
            dices.append(dice(predicted, lesion))
            distances.append(hd95(predicted, lesion, spacing))
            tp += 1
        else:
            dices.append(0.0)
            distances.append(LESION_HD95_PENALTY)

    fp = n_components - len(matched)
    terms = len(dices) + fp
    if terms == 0:
        return LesionScore(1.0, 0.0, (), (), (), 0, 0, 0)
    return LesionScore(
        dice=sum(dices) / terms,
        hd95=(sum(distances) + fp * LESION_HD95_PENALTY) / terms,
        lesion_dice=tuple(dices),
        lesion_hd95=tuple(distances),
        lesion_volume_mm3=tuple(volumes),
        tp=tp,
        fn=len(dices) - tp,
        fp=fp,
    )


def lesion_metric_columns(region_names: Sequence[str]) -> list[str]:
    """Column names in the order `evaluate_case_lesionwise` returns them: LesionDice_R, LesionHD95_R."""
    return [f"{metric}_{name}" for name in region_names for metric in LESION_METRICS]


def evaluate_case_lesionwise(
    pred_seg: np.ndarray,
    gt_seg: np.ndarray,
    regions: Sequence[Sequence[int]],
    region_names: Sequence[str],
    spacing: Sequence[float],
    rules: LesionRules = CHALLENGE_RULES[DEFAULT_CHALLENGE],
    et_index: int | None = None,
    postprocess_et_voxels: int | None = None,
) -> dict[str, float]:
    """Lesion-wise Dice and HD95 of every region of one case: {"LesionDice_WT": ..., ...}.

    Label maps, regions and the optional RFNet ET post-processing of the prediction as in
    `metrics.evaluate_case`.
    """
    if pred_seg.shape != gt_seg.shape:
        raise ValueError(f"prediction shape {pred_seg.shape} != reference shape {gt_seg.shape}")
    if len(regions) != len(region_names):
        raise ValueError(f"{len(regions)} regions but {len(region_names)} region names")
    pred_masks = region_masks(pred_seg, regions)
    if postprocess_et_voxels is not None:
        if et_index is None:
            raise ValueError("postprocess_et_voxels needs et_index")
        pred_masks = postprocess_et(pred_masks, et_index, postprocess_et_voxels)
    result: dict[str, float] = {}
    for name, p, g in zip(region_names, pred_masks, region_masks(gt_seg, regions), strict=True):
        score = lesion_scores(p, g, spacing, rules)
        result[f"LesionDice_{name}"] = score.dice
        result[f"LesionHD95_{name}"] = score.hd95
    return result


def _box(mask: np.ndarray) -> tuple[slice, ...]:
    (box,) = ndimage.find_objects(mask.astype(np.uint8))
    return box


def _expand(box: tuple[slice, ...], margin: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(
        slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(box, shape, strict=True)
    )
