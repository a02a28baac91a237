"""The metric sets an evaluation can compute per case, by name: `legacy` and `lesion`.

`legacy` is whole-region Dice and HD95 with the BraTS 2017–2021 empty rules (metrics.py, columns
Dice_R, HD95_R); `lesion` is the BraTS 2023 lesion-wise Dice and HD95 with the GLI rules (lesion.py,
columns LesionDice_R, LesionHD95_R). `evaluate-subsets --metrics` takes these names; the tables head
each metric kind with its own name. Importing this module pulls in no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnunet_holder.evaluate.lesion import evaluate_case_lesionwise, lesion_metric_columns
from nnunet_holder.evaluate.metrics import evaluate_case, metric_columns

METRIC_SETS: dict[str, str] = {
    "legacy": "Dice and HD95 of each whole region (BraTS 2017-2021 empty rules)",
    "lesion": "lesion-wise Dice and HD95 (BraTS 2023 definitions, GLI rules: docs/lesion_metrics.md)",
}
DEFAULT_METRIC_SETS: tuple[str, ...] = ("legacy",)


def check_metric_sets(names: Sequence[str]) -> tuple[str, ...]:
    """The names without repeats, in the order of `METRIC_SETS`; ValueError for an unknown or no name."""
    unknown = sorted(set(names) - set(METRIC_SETS))
    if unknown or not names:
        raise ValueError(f"unknown metric sets {unknown}; choose from {list(METRIC_SETS)}")
    return tuple(name for name in METRIC_SETS if name in names)


def metric_set_columns(names: Sequence[str], region_names: Sequence[str]) -> list[str]:
    """Column names in the order `score_case` returns them."""
    columns = {"legacy": metric_columns, "lesion": lesion_metric_columns}
    return [c for name in check_metric_sets(names) for c in columns[name](region_names)]


def score_case(
    pred_seg: np.ndarray,
    gt_seg: np.ndarray,
    regions: Sequence[Sequence[int]],
    region_names: Sequence[str],
    spacing: Sequence[float],
    names: Sequence[str] = DEFAULT_METRIC_SETS,
    et_index: int | None = None,
    postprocess_et_voxels: int | None = None,
) -> dict[str, float]:
    """Every metric of the named sets for one case, as `metrics.evaluate_case` scores one set."""
    scorers = {"legacy": evaluate_case, "lesion": evaluate_case_lesionwise}
    result: dict[str, float] = {}
    for name in check_metric_sets(names):
        result.update(
            scorers[name](
                pred_seg,
                gt_seg,
                regions,
                region_names,
                spacing,
                et_index=et_index,
                postprocess_et_voxels=postprocess_et_voxels,
            )
        )
    return result
