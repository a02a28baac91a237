"""Converting one BraTS case into nnU-Net files: the unit of work of the conversion's process pool.

A case is checked completely (files present, geometry consistent between its files, image payloads
intact, segmentation labels valid) before anything is written, so a bad case leaves no files behind
and every problem it has is reported at once, each with the file it concerns. Image files with NaN
voxels follow `predict`'s rule: NaN everywhere is a missing file, some NaN are set to 0 in the copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import SimpleITK as sitk
from nnunet_holder.conversion.images import (
    Geometry,
    check_payload,
    copy_as_nii_gz,
    copy_with_non_finite_as_zero,
    count_non_finite,
    geometry_difference,
    read_geometry,
    write_labels,
    write_zero_like,
)
from nnunet_holder.conversion.labels import brats_to_nnunet
from nnunet_holder.conversion.layouts import MODALITIES, SEG, CaseSource, Layout
from nnunet_holder.conversion.problems import Problem

TRAIN = "Tr"
TEST = "Ts"


@dataclass(frozen=True)
class CaseJob:
    source: CaseSource
    layout: Layout
    destination: str  # TRAIN or TEST
    output_dir: Path
    keep_partial: bool
    incomplete_training: bool = False


@dataclass
class CaseOutcome:
    case_id: str
    destination: str | None  # None: not converted
    channels: list[int] = field(default_factory=list)  # channels written from a source file
    absent: list[int] = field(default_factory=list)  # channels written zero-filled (imagesTr only)
    problems: list[Problem] = field(default_factory=list)


def _missing_files(job: CaseJob) -> list[str]:
    return [role for role in (*MODALITIES, SEG) if role not in job.source.files]


def _check_files(job: CaseJob, problems: list[Problem]) -> sitk.Image | None:
    """Check every file of the case, appending problems; returns the segmentation if it is readable."""
    case = job.source.case_id
    geometries: dict[str, Geometry] = {}
    for role in MODALITIES:
        path = job.source.files.get(role)
        if path is None:
            continue
        try:
            geometries[role] = read_geometry(path)
            check_payload(path)
        except (ValueError, OSError) as e:
            problems.append(Problem(case, str(path), "error", f"{role}: {e}"))
    seg_image = None
    seg_path = job.source.files.get(SEG)
    if seg_path is not None:
        try:
            image = sitk.ReadImage(str(seg_path))
            check_payload(seg_path)  # SimpleITK reads a truncated file without an error
        except RuntimeError as e:
            problems.append(
                Problem(case, str(seg_path), "error", f"unreadable segmentation: {str(e).strip()}")
            )
        except (ValueError, OSError) as e:
            problems.append(Problem(case, str(seg_path), "error", f"{SEG}: {e}"))
        else:
            seg_image = image
            geometries[SEG] = Geometry.of(seg_image)
    if geometries:
        reference_role = next(iter(geometries))
        reference = geometries[reference_role]
        for role, geometry in geometries.items():
            difference = geometry_difference(geometry, reference)
            if difference:
                problems.append(
                    Problem(
                        case,
                        str(job.source.files[role]),
                        "error",
                        f"geometry mismatch: {role} differs from {reference_role} "
                        f"({job.source.files[reference_role].name}): {difference}",
                    )
                )
    return seg_image


def _check_voxels(job: CaseJob, problems: list[Problem]) -> tuple[set[str], set[str]]:
    """(modalities whose file is NaN everywhere, modalities whose file has some NaN voxels), each
    reported; predict's rule: the first are missing files, the others are copied with NaN set to 0."""
    case = job.source.case_id
    empty, some = set(), set()
    for role in MODALITIES:
        path = job.source.files.get(role)
        if path is None:
            continue
        count, total, words = count_non_finite(path)
        if count == total:
            empty.add(role)
            message = f"{role}: all {total} voxels are {words}; treated as missing"
            problems.append(Problem(case, str(path), "warning", message))
        elif count:
            some.add(role)
            message = f"{role}: {count} {words} voxels; set to 0 in the converted copy (source unchanged)"
            problems.append(Problem(case, str(path), "warning", message))
    return empty, some


def convert_case(job: CaseJob) -> CaseOutcome:
    """Check and write one case; never raises for bad data, the outcome carries the problems."""
    case = job.source.case_id
    problems = list(job.source.problems)
    outcome = CaseOutcome(case, None, problems=problems)
    missing = _missing_files(job)
    seg_image = _check_files(job, problems)
    labels = None
    if seg_image is not None:
        try:
            labels, messages = brats_to_nnunet(sitk.GetArrayViewFromImage(seg_image), job.layout.convention)
            problems.extend(Problem(case, str(job.source.files[SEG]), level, m) for level, m in messages)
        except ValueError as e:
            problems.append(Problem(case, str(job.source.files[SEG]), "error", str(e)))
    if any(p.level == "error" for p in problems):
        return outcome
    all_nan, some_nan = _check_voxels(job, problems)
    missing = [role for role in (*MODALITIES, SEG) if role in missing or role in all_nan]
    present = [role for role in MODALITIES if role in job.source.files and role not in all_nan]

    destination = job.destination
    zero_filled: list[str] = []
    if missing:
        names = ", ".join(job.source.expected_name(job.layout, role) for role in missing)
        keep = job.keep_partial and bool(present)
        if not present:
            keep = False
            action = "case left out (no image file at all)"
        elif job.incomplete_training and destination == TRAIN and SEG not in missing:
            keep, zero_filled = True, [role for role in MODALITIES if role not in present]
            action = (
                "kept in imagesTr with a zero-filled file per missing channel, recorded in dataset.json "
                "(--train-incomplete)"
            )
        elif job.incomplete_training and destination == TEST:
            keep = True
            action = "kept as a partial case in imagesTs (only the present files)"
        elif keep:
            destination = TEST
            action = "kept as a partial case in imagesTs (only the present files)"
        else:
            action = "case left out (--keep-partial keeps it in imagesTs, --train-incomplete in imagesTr)"
        level = "error" if not present else "note" if zero_filled else "warning"
        problems.append(
            Problem(case, str(job.source.folder), level, f"missing {', '.join(missing)} ({names}); {action}")
        )
        if not keep:
            return outcome

    images_dir = job.output_dir / f"images{destination}"
    labels_dir = job.output_dir / f"labels{destination}"
    written: list[Path] = []
    try:
        for channel, role in enumerate(MODALITIES):
            if role in present:
                target = images_dir / f"{case}_{channel:04d}.nii.gz"
                copy = copy_with_non_finite_as_zero if role in some_nan else copy_as_nii_gz
                copy(job.source.files[role], target)
                written.append(target)
                outcome.channels.append(channel)
            elif role in zero_filled:
                target = images_dir / f"{case}_{channel:04d}.nii.gz"
                write_zero_like(job.source.files[present[0]], target)
                written.append(target)
                outcome.absent.append(channel)
        if labels is not None and seg_image is not None:
            target = labels_dir / f"{case}.nii.gz"
            write_labels(labels, seg_image, target)
            written.append(target)
    except (OSError, RuntimeError) as e:
        for path in written:
            path.unlink(missing_ok=True)
        problems.append(
            Problem(case, str(job.source.folder), "error", f"writing the converted files failed: {e}")
        )
        outcome.channels.clear()
        outcome.absent.clear()
        return outcome
    outcome.destination = destination
    return outcome
