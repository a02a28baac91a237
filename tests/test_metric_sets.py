"""`--metrics legacy lesion`: the metric sets per case, their columns, and the tables that name them.

The last test drives the real `evaluate-subsets` on the tiny trained model and recomputes the
lesion-wise scores of its saved full-set segmentations.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_holder.brats import NNUNET_REGIONS, REGION_NAMES, SHORT_MODALITIES
from nnunet_holder.evaluate.lesion import evaluate_case_lesionwise
from nnunet_holder.evaluate.metric_sets import check_metric_sets, metric_set_columns, score_case
from nnunet_holder.evaluate.metrics import evaluate_case, regions_from_dataset_labels
from nnunet_holder.evaluate.runner import merge_evaluation
from nnunet_holder.evaluate.tables import paper_subset_order
from nnunet_holder.file_names import (
    DICE_HEATMAP,
    PER_CASE_TABLE,
    SEGMENTATIONS_FOLDER,
    SUBSET_CASES_FOLDER,
    SUBSET_PARTS_FOLDER,
    SUBSET_TABLE_MD,
)
from tests.helpers_nnunet import run_cli
from tests.test_predict import MODEL_ARGS

MODALITIES = list(SHORT_MODALITIES)


def _label_map(rng: np.random.Generator) -> np.ndarray:
    seg = np.zeros((24, 24, 24), np.uint8)
    grid = np.indices(seg.shape)
    for label, radius in ((1, 8), (2, 5), (3, 3)):
        centre = 12 + rng.integers(-1, 2, 3)
        seg[sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2] = label
    return seg


def test_metric_sets_names_order_and_columns() -> None:
    assert check_metric_sets(["lesion", "legacy", "lesion"]) == ("legacy", "lesion")
    with pytest.raises(ValueError, match="unknown metric sets"):
        check_metric_sets(["lesionwise"])
    with pytest.raises(ValueError, match="unknown metric sets"):
        check_metric_sets([])
    assert metric_set_columns(["lesion"], ["WT", "ET"]) == [
        "LesionDice_WT",
        "LesionHD95_WT",
        "LesionDice_ET",
        "LesionHD95_ET",
    ]
    rng = np.random.default_rng(3)
    pred, ref = _label_map(rng), _label_map(rng)
    args = (pred, ref, NNUNET_REGIONS, REGION_NAMES, (1.0, 1.0, 2.0))
    both = score_case(*args, ["lesion", "legacy"], et_index=2, postprocess_et_voxels=5)
    assert list(both) == metric_set_columns(["legacy", "lesion"], REGION_NAMES)
    assert both == {
        **evaluate_case(*args, et_index=2, postprocess_et_voxels=5),
        **evaluate_case_lesionwise(*args, et_index=2, postprocess_et_voxels=5),
    }
    assert score_case(*args) == evaluate_case(*args)


def _fake_evaluation(out: Path, metrics: list[str], rows_metrics: list[str]) -> None:
    """The files `evaluate_cases` leaves for `merge_evaluation`: one case, every subset."""
    order = paper_subset_order(MODALITIES)
    columns = metric_set_columns(rows_metrics, REGION_NAMES)
    rows = [{"case": "c1", "subset": s, **{c: 0.5 for c in columns}} for s in order]
    (out / SUBSET_CASES_FOLDER).mkdir(parents=True)
    (out / SUBSET_CASES_FOLDER / "c1.json").write_text(
        json.dumps(
            {
                "rows": rows,
                "timing": {"predict_seconds": 1.0},
                "setting": {"protocol": "preprocessed", "metrics": columns},
            }
        )
    )
    (out / SUBSET_PARTS_FOLDER).mkdir()
    manifest = {
        "part_id": 0,
        "num_parts": 1,
        "cases": ["c1"],
        "failures": [],
        "title": None,
        "order": order,
        "modality_names": MODALITIES,
        "setting": {"protocol": "preprocessed", "metrics": metric_set_columns(metrics, REGION_NAMES)},
    }
    (out / SUBSET_PARTS_FOLDER / "manifest_part_0_of_1.json").write_text(json.dumps(manifest))


def test_lesion_tables_name_their_metric_and_lesion_only_draws_no_heatmap(tmp_path: Path) -> None:
    _fake_evaluation(tmp_path, ["lesion"], ["lesion"])
    summary = merge_evaluation(tmp_path)
    assert summary.kinds() == ["LesionDice", "LesionHD95"]
    text = (tmp_path / SUBSET_TABLE_MD).read_text()
    assert "**Lesion-wise Dice (%), BraTS 2023 GLI rules**" in text
    assert "**Lesion-wise HD95 (mm), BraTS 2023 GLI rules**" in text and "50.0" in text
    assert not (tmp_path / DICE_HEATMAP).exists()


def test_cases_scored_with_other_metrics_are_refused(tmp_path: Path) -> None:
    _fake_evaluation(tmp_path, ["legacy", "lesion"], ["legacy"])
    with pytest.raises(SystemExit, match=r"c1 .*metrics"):
        merge_evaluation(tmp_path)


def test_evaluate_subsets_with_lesion_metrics(trained, tmp_path: Path) -> None:
    raw = trained["root"] / "raw" / trained["name"]
    out = tmp_path / "eval"
    args = ["-i", str(raw / "imagesTs"), "-l", str(raw / "labelsTs"), "-o", str(out), *MODEL_ARGS]
    proc = run_cli(
        ["nnunet-holder", "evaluate-subsets", *args, "--metrics", "legacy", "lesion", "--save-segmentations"],
        trained["env"],
    )
    for heading in ("Dice (%)", "HD95 (mm)", "Lesion-wise Dice (%), BraTS 2023 GLI", "Lesion-wise HD95 (mm)"):
        assert f"**{heading}" in proc.stdout and f"**{heading}" in (out / SUBSET_TABLE_MD).read_text()
    assert (out / DICE_HEATMAP).is_file()
    dataset_json = json.loads((raw / "dataset.json").read_text())
    regions, names = regions_from_dataset_labels(dataset_json["labels"])
    with (out / PER_CASE_TABLE).open(newline="") as f:
        rows = {row["case"]: row for row in csv.DictReader(f) if row["subset"] == "Full"}
    assert len(rows) == 3
    for case, row in rows.items():
        reference = sitk.ReadImage(str(raw / "labelsTs" / f"{case}.nii.gz"))
        prediction = sitk.ReadImage(str(out / SEGMENTATIONS_FOLDER / "Full" / f"{case}.nii.gz"))
        expected = evaluate_case_lesionwise(
            sitk.GetArrayFromImage(prediction),
            sitk.GetArrayFromImage(reference),
            regions,
            names,
            reference.GetSpacing()[::-1],  # SimpleITK's (x, y, z) to the array's axes
        )
        assert {k: float(row[k]) for k in expected} == pytest.approx(expected), case
