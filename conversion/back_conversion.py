"""`to_brats`: nnU-Net predictions in region labels (0/1/2/3) back to BraTS label files.

Only the label values change; each output keeps its prediction's geometry (origin, spacing,
direction) and is written as uint8. The BraTS convention comes from the argument, else from a
dataset.json (`brats_convention`, written by `convert_brats`; nnU-Net also copies dataset.json
into every prediction folder), else BraTS 2018–2021 (0/1/2/4) with a warning (`resolve_convention`).
"""

from __future__ import annotations

import json
from pathlib import Path

import SimpleITK as sitk
from nnunet_holder.conversion.images import write_labels
from nnunet_holder.conversion.labels import describe_convention, nnunet_to_brats, normalize_convention
from nnunet_holder.conversion.problems import ConversionError, Problem

DEFAULT_CONVENTION = "2018"


def _read_dataset_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConversionError(f"cannot read dataset.json {path}: {e}") from e


def _dataset_metadata(pred_dir: Path, dataset_json: Path | None) -> dict:
    """The dataset.json to follow (the given one, else the copy nnU-Net leaves in the prediction folder)."""
    if dataset_json is not None:
        return _read_dataset_json(dataset_json)
    beside = pred_dir / "dataset.json"
    return _read_dataset_json(beside) if beside.is_file() else {}


def resolve_convention(
    pred_dir: Path | str, convention: str | None = None, dataset_json: Path | str | None = None
) -> tuple[str, str | None]:
    """The convention `to_brats` writes, and a warning when it is only the default.

    `nnunet-holder predict` and `evaluate-subsets --save-segmentations` leave no dataset.json
    beside their segmentations, so without `convention` a BraTS 2023+ model's predictions would
    silently get 2018-2021 labels (ET = 4); the warning says so and names the option.
    """
    metadata = _dataset_metadata(Path(pred_dir), Path(dataset_json) if dataset_json is not None else None)
    chosen = convention or metadata.get("brats_convention")
    if chosen is not None:
        return normalize_convention(chosen), None
    return DEFAULT_CONVENTION, (
        f"no --convention given and no dataset.json with brats_convention (in {pred_dir} or --dataset-json): "
        f"writing {describe_convention(DEFAULT_CONVENTION)}; for BraTS 2023/2024 data pass --convention 2023"
    )


def to_brats(
    pred_dir: Path | str,
    out_dir: Path | str,
    convention: str | None = None,
    dataset_json: Path | str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write one BraTS-label file per prediction; returns the written paths.

    Raises ConversionError before writing anything when an output exists without `overwrite`, and after
    converting the other files when some predictions hold values other than 0..3.
    """
    pred_dir, out_dir = Path(pred_dir), Path(out_dir)
    if not pred_dir.is_dir():
        raise ConversionError(f"prediction folder {pred_dir} does not exist")
    if pred_dir.resolve() == out_dir.resolve():
        raise ConversionError(
            "the output folder must differ from the prediction folder (predictions stay untouched)"
        )
    metadata = _dataset_metadata(pred_dir, Path(dataset_json) if dataset_json is not None else None)
    convention, _ = resolve_convention(pred_dir, convention, dataset_json)
    file_ending = metadata.get("file_ending", ".nii.gz")
    predictions = sorted(p for p in pred_dir.iterdir() if p.is_file() and p.name.endswith(file_ending))
    if not predictions:
        raise ConversionError(f"no *{file_ending} predictions in {pred_dir}")
    existing = [out_dir / p.name for p in predictions if (out_dir / p.name).exists()]
    if existing and not overwrite:
        raise ConversionError(
            f"{len(existing)} output files already exist in {out_dir} (e.g. {existing[0].name}); "
            "pass --overwrite"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written, problems = [], []
    for path in predictions:
        case = path.name[: -len(file_ending)]
        try:
            image = sitk.ReadImage(str(path))
            labels = nnunet_to_brats(sitk.GetArrayViewFromImage(image), convention)
        except (RuntimeError, ValueError) as e:
            problems.append(Problem(case, str(path), "error", str(e).strip()))
            continue
        target = out_dir / path.name
        write_labels(labels, image, target)
        written.append(target)
    if problems:
        raise ConversionError(
            f"{len(problems)} of {len(predictions)} predictions could not be converted", problems
        )
    return written
