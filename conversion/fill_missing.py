"""`fill_missing`: any nnU-Net raw dataset whose training cases lack channel files -> a trainable copy.

nnU-Net needs a file per channel of every training case. This writes a new dataset (another id,
built beside the target and renamed into place when complete, as `convert_brats` does) holding a
copy of every file of the source, a zero-filled file with the case's grid for each missing channel
of a training case, and dataset.json with the absent channels recorded under
`availability.ABSENT_KEY`. The source dataset is never modified. A training case is refused (left
out of the copy, reported with the file) when it has no channel file at all, when its files
disagree in geometry, when the source's own record names a channel that has an image or leaves
out one that has none (an all-zero file counts as none), or when a channel to fill is normalised
by nnU-Net's CTNormalization: its intensity statistics come from the dataset's foreground voxels,
which zero-filled files would drag towards 0. Test cases (imagesTs) are copied as they are:
`predict` and `evaluate-subsets` read cases with missing files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from nnunet_holder.conversion.convert import (
    DATASET_LEVEL,
    check_target,
    dataset_folder_name,
    raw_root_folder,
    swap_in,
)
from nnunet_holder.conversion.images import geometry_difference, read_geometry, write_zero_like
from nnunet_holder.conversion.problems import ConversionError, Problem
from nnunetv2.preprocessing.normalization.default_normalization_schemes import CTNormalization
from nnunetv2.preprocessing.normalization.map_channel_name_to_normalization import get_normalization_scheme

from nnunet_holder.availability import ABSENT_KEY, AbsenceRecordError, absent_channels, record_entry
from nnunet_holder.predict.inputs import CaseFiles, scan_folder

WRITABLE_ENDINGS: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".mha")
"""File endings whose zero-filled files SimpleITK writes with the case's full geometry."""


@dataclass
class FillResult:
    output_dir: Path
    training_cases: list[str] = field(default_factory=list)
    absent: dict[str, list[str]] = field(default_factory=dict)  # case -> channel names zero-filled
    refused: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def find_dataset(dataset_id: int) -> Path:
    """The raw folder `$nnUNet_raw/DatasetXXX_*` of an id."""
    matches = sorted(p for p in raw_root_folder().glob(f"Dataset{int(dataset_id):03d}_*") if p.is_dir())
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise ConversionError(f"need one raw dataset of id {dataset_id} in $nnUNet_raw, found {found}")
    return matches[0]


def _all_zero(path: Path) -> bool:
    return not np.any(sitk.GetArrayFromImage(sitk.ReadImage(str(path))))


def _check_case(
    case: str,
    files: dict[int, Path],
    label: Path,
    recorded: tuple[int, ...] | None,
    dataset_json: dict,
    problems: list[Problem],
) -> list[int] | None:
    """The channels to zero-fill for one training case, or None (problems appended) when refused."""
    names = dataset_json["channel_names"]
    num_channels = len(names)
    before = len(problems)
    if not files:
        problems.append(Problem(case, str(label), "error", "no channel file at all for this case"))
        return None
    geometries = {}
    for _, path in sorted(files.items()):
        try:
            geometries[path] = read_geometry(path)
        except ValueError as e:
            problems.append(Problem(case, str(path), "error", str(e)))
    if label.is_file():
        try:
            geometries[label] = read_geometry(label)
        except ValueError as e:
            problems.append(Problem(case, str(label), "error", str(e)))
    else:
        problems.append(Problem(case, str(label), "error", "label file not found"))
    if geometries:
        reference, first = next(iter(geometries)), next(iter(geometries.values()))
        for path, geometry in geometries.items():
            if difference := geometry_difference(geometry, first):
                problems.append(
                    Problem(case, str(path), "error", f"geometry differs from {reference.name}: {difference}")
                )
    if len(problems) > before:
        return None
    empty = {c for c, path in files.items() if _all_zero(path)}
    without_image = sorted(set(range(num_channels)) - set(files) | empty)
    if len(without_image) == num_channels:
        problems.append(Problem(case, str(files[min(files)]), "error", "every channel file is all zero"))
        return None
    if recorded is not None:
        for channel in sorted(set(recorded) - set(without_image)):
            problems.append(
                Problem(case, str(files[channel]), "error",
                        f"{ABSENT_KEY} names channel {names[str(channel)]!r}, but this file holds an image")
            )
        for channel in sorted(set(without_image) - set(recorded)):
            where = files.get(channel, label.parent.parent / "imagesTr" / f"{case}_{channel:04d}")
            what = "is all zero" if channel in empty else "does not exist"
            problems.append(
                Problem(case, str(where), "error",
                        f"channel {names[str(channel)]!r} {what}, but {ABSENT_KEY} does not name it")
            )
    for channel in without_image:
        if get_normalization_scheme(names[str(channel)]) is CTNormalization:
            problems.append(
                Problem(case, str(label.parent.parent / "imagesTr"), "error",
                        f"channel {names[str(channel)]!r} is missing and normalised by nnU-Net's "
                        "CTNormalization, whose dataset-wide foreground statistics zero-filled files "
                        "would skew")
            )
    return None if len(problems) > before else without_image


def fill_missing(
    source_id: int, target_id: int, name: str | None = None, overwrite: bool = False
) -> FillResult:
    """Copy dataset `source_id` to `target_id` with missing training channels zero-filled and recorded.

    Raises ConversionError when the source cannot be read, the target exists without `overwrite`, or
    no training case is left; refused cases are reported in the result and left out.
    """
    source = find_dataset(source_id)
    dataset_json = json.loads((source / "dataset.json").read_text())
    ending = dataset_json["file_ending"]
    if ending.lower() not in WRITABLE_ENDINGS:
        raise ConversionError(f"{source}: file ending {ending} is not one of {', '.join(WRITABLE_ENDINGS)}, "
                              "in which zero-filled files keep the case's geometry")
    try:
        record = absent_channels(dataset_json) if ABSENT_KEY in dataset_json else None
    except AbsenceRecordError as e:
        raise ConversionError(f"{source / 'dataset.json'}: {e}") from e
    folder = dataset_folder_name(target_id, name or source.name.split("_", 1)[1])
    target = raw_root_folder() / folder
    check_target(source, target, overwrite)
    num_channels = len(dataset_json["channel_names"])
    result = FillResult(target)
    cases = scan_folder(source / "imagesTr", ending, num_channels)
    labelled = {p.name[: -len(ending)] for p in (source / "labelsTr").glob(f"*{ending}")}
    for case_id in sorted(labelled - {c.case for c in cases}):
        cases.append(CaseFiles(case_id))  # a label without any image file: refused by name below
    build = Path(tempfile.mkdtemp(prefix=f".{folder}.partial-", dir=target.parent))
    try:
        for sub in ("imagesTr", "labelsTr"):
            (build / sub).mkdir()
        for case in sorted(cases, key=lambda c: c.case):
            label = source / "labelsTr" / f"{case.case}{ending}"
            result.problems.extend(Problem(case.case, str(e.file), "error", e.reason) for e in case.problems)
            recorded = None if record is None else record.get(case.case, ())
            absent = None if case.problems else _check_case(
                case.case, case.files, label, recorded, dataset_json, result.problems
            )
            if absent is None:
                result.refused.append(case.case)
                continue
            for channel in range(num_channels):
                out = build / "imagesTr" / f"{case.case}_{channel:04d}{ending}"
                if channel in absent:
                    write_zero_like(label, out)
                else:
                    shutil.copy2(case.files[channel], out)
            shutil.copy2(label, build / "labelsTr" / label.name)
            result.training_cases.append(case.case)
            if absent:
                result.absent[case.case] = record_entry(absent, dataset_json["channel_names"])
        if not result.training_cases:
            raise ConversionError(f"no training case of {source} could be copied", result.problems)
        for extra in sorted(source.iterdir()):
            if extra.name not in ("imagesTr", "labelsTr", "dataset.json"):
                copy = shutil.copytree if extra.is_dir() else shutil.copy2
                copy(extra, build / extra.name)
        content = {**dataset_json, "numTraining": len(result.training_cases)}
        content.pop(ABSENT_KEY, None)
        if result.absent:
            content[ABSENT_KEY] = result.absent
        (build / "dataset.json").write_text(json.dumps(content, indent=2) + "\n")
        if result.refused:
            refused = ", ".join(result.refused)
            message = f"{len(result.refused)} training case(s) refused and left out: {refused}"
            result.problems.append(Problem(DATASET_LEVEL, str(source), "warning", message))
        swap_in(build, target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return result
