"""Finding and reading the channel files of partial-modality cases.

Files are matched to channels by their nnU-Net suffix (`CASE_XXXX<ending>`), never by their
position in a listing, so a missing file leaves a gap instead of shifting the later channels.
Each present file is first checked for truncation and for a 4-D header (NIfTI only, see
`check_intact`), then read on its own with the plans' reader and checked against the case's other
files (shape, spacing, and origin and direction where the reader reports them: SimpleITKIO,
NibabelIO). Then the voxels are checked, with one rule for every command that reads cases:
- NaN (or infinite) voxels in a file are set to 0: nnU-Net's normalisation would spread one
  NaN over the whole channel. A file that is NaN everywhere holds no image and is treated as
  missing.
- a file with no contrast inside the brain (constant or near-constant, `NEAR_CONSTANT`) holds
  no image either and is treated as missing; the brain is where any other channel is non-zero.
- a missing channel becomes a zero array, which nnU-Net's preprocessing keeps exactly zero.
Each such finding is a note naming the file (`CaseImages.notes`). Problems that stop a case
raise `CaseError` naming the case and file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from nnunet_holder.conversion.images import check_payload, count_non_finite, non_finite

# SimpleITK reads a NIfTI file cut short without an error, so its payload is checked against its
# header first. Only NIfTI states its payload size in a header that check_payload understands;
# files with other endings (.mha, .nrrd, .png, ...) go to the plans' reader unchecked, as before.
_CHECKED_ENDINGS = (".nii", ".nii.gz")

NEAR_CONSTANT = 1e-3
"""A channel whose intensities inside the brain (1st to 99th percentile) spread over less than
this fraction of their magnitude has no contrast. Tissue contrasts in MRI are tens of percent of
the intensity, float rounding is far below it. A file of pure noise is not caught by this."""


class CaseError(Exception):
    """A problem that stops one case: carries the case id and the offending file."""

    def __init__(self, case: str, file: Path | None, reason: str) -> None:
        self.case, self.file, self.reason = case, file, reason
        where = f" ({file})" if file is not None else ""
        super().__init__(f"case {case}{where}: {reason}")


@dataclass
class CaseFiles:
    case: str
    files: dict[int, Path] = field(default_factory=dict)
    problems: list[CaseError] = field(default_factory=list)


@dataclass
class CaseImages:
    case: str
    images: np.ndarray  # (M, *spatial) float32, zeros where a channel is missing or unusable
    properties: dict
    files: dict[int, Path]
    zero_filled: tuple[int, ...]  # files present but entirely zero
    unusable: dict[int, str] = field(default_factory=dict)  # files present, treated as missing: why
    non_finite: dict[int, str] = field(default_factory=dict)  # "12 NaN voxels", set to 0, per file

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.images.shape[0]) if i not in self.files)

    @property
    def present(self) -> tuple[int, ...]:
        return tuple(i for i in sorted(self.files) if i not in self.zero_filled and i not in self.unusable)

    @property
    def notes(self) -> list[str]:
        """One line per file whose voxels were changed or not used, naming the file and what was done."""
        name = {c: path.name for c, path in self.files.items()}
        changed = [f"{name[c]}: {what} set to 0" for c, what in sorted(self.non_finite.items())]
        return changed + [f"{name[c]}: {why}; treated as missing" for c, why in sorted(self.unusable.items())]


def scan_folder(folder: Path, file_ending: str, num_channels: int) -> list[CaseFiles]:
    """Group `CASE_XXXX<ending>` files by case, sorted by case id as nnU-Net lists a folder.

    Out-of-range channels are per-case problems.
    """
    pattern = re.compile(rf"^(?P<case>.+)_(?P<channel>\d{{4}}){re.escape(file_ending)}$")
    cases: dict[str, CaseFiles] = {}
    for path in sorted(Path(folder).iterdir()):
        match = pattern.match(path.name)
        if match is None or not path.is_file():
            continue
        case = cases.setdefault(match["case"], CaseFiles(match["case"]))
        channel = int(match["channel"])
        if channel >= num_channels:
            case.problems.append(
                CaseError(
                    case.case, path, f"channel {channel:04d} does not exist: the model has {num_channels}"
                )
            )
        else:
            case.files[channel] = path
    return [cases[c] for c in sorted(cases)]


def _geometry(props: dict) -> dict:
    """Spacing, origin and direction as the reader reports them (only spacing for PNG and TIFF readers)."""
    origin = direction = None
    if sitk := props.get("sitk_stuff"):
        origin, direction = sitk.get("origin"), sitk.get("direction")
    elif nibabel := props.get("nibabel_stuff"):  # NibabelIO and NibabelIOWithReorient
        affine = np.asarray(nibabel["original_affine"], dtype=float)
        rotation = affine[:3, :3]
        origin, direction = affine[:3, 3], (rotation / np.linalg.norm(rotation, axis=0)).ravel()
    return {"spacing": props.get("spacing"), "origin": origin, "direction": direction}


def _check_same_geometry(case: str, ref_file: Path, ref: tuple, path: Path, other: tuple) -> None:
    (ref_shape, ref_geo), (shape, geo) = ref, other
    if ref_shape != shape:
        raise CaseError(case, path, f"shape {shape} differs from {ref_shape} of {ref_file.name}")
    tolerances = {"spacing": 1e-3, "origin": 1e-2, "direction": 1e-3}
    for key, tol in tolerances.items():
        a, b = ref_geo[key], geo[key]
        if a is not None and b is not None and not np.allclose(a, b, atol=tol, rtol=0):
            raise CaseError(case, path, f"{key} {_rounded(b)} differs from {_rounded(a)} of {ref_file.name}")


def _rounded(values) -> tuple[float, ...]:
    return tuple(round(float(x), 4) for x in np.ravel(values))


def _nifti_shape(path: Path) -> tuple[int, ...] | None:
    """The voxel shape a NIfTI header states (None for other files); a header-only read."""
    if not path.name.lower().endswith(_CHECKED_ENDINGS):
        return None
    return tuple(int(s) for s in nib.load(str(path)).shape)


def check_intact(case: str, path: Path) -> None:
    """Raise CaseError when a NIfTI file is truncated, its gzip stream corrupt, or it holds several
    volumes (4-D); a trailing axis of length 1 is accepted, as SimpleITK reads it. Other files pass."""
    if not path.name.lower().endswith(_CHECKED_ENDINGS):
        return
    try:
        check_payload(path)
        shape = _nifti_shape(path)
    except (ValueError, OSError) as e:
        raise CaseError(case, path, str(e)) from e
    if len(shape) > 3 and any(s != 1 for s in shape[3:]):
        raise CaseError(
            case,
            path,
            f"the image is {len(shape)}-D {shape}, where a 3-D volume is expected (one file per channel)",
        )


def _read_channel(case: str, path: Path, reader) -> tuple[np.ndarray, dict]:
    """One channel file as a 3-D float32 array and the reader's properties. Raises CaseError."""
    check_intact(case, path)
    try:
        data, props = reader.read_images([str(path)])
    except Exception as e:  # readers raise many types; the user needs the file name
        shape = _nifti_shape(path)
        why = f"unreadable: {type(e).__name__}: {e}"
        if shape is not None and len(shape) > 3:  # NibabelIO reads no trailing axis, not even of length 1
            why += f" (the header is {len(shape)}-D {shape}; save the file as a 3-D volume)"
        raise CaseError(case, path, why) from e
    if data.shape[0] != 1:  # SimpleITKIO returns the volumes of a 4-D .mha/.nrrd file as channels
        raise CaseError(
            case,
            path,
            f"the image is 4-D ({data.shape[0]} volumes of {data.shape[1:]}), where a 3-D volume is expected",
        )
    return data[0].astype(np.float32, copy=False), props


def _count_non_finite(path: Path, array: np.ndarray) -> tuple[int, str]:
    """NaN and infinite voxels of a channel file, and their words. SimpleITK's NIfTI reader (ITK 5.4)
    returns them as 0, so a NIfTI file's own voxels are counted (decoded again, floating point only)."""
    if path.name.lower().endswith(_CHECKED_ENDINGS):
        count, _, what = count_non_finite(path)
        return count, what
    bad, what = non_finite(array)
    return int(bad.sum()), what


def _no_contrast(array: np.ndarray, brain: np.ndarray) -> str | None:
    """Why `array` carries no image inside `brain` (constant or near-constant), or None."""
    values = array[brain] if brain.any() else array.ravel()
    low, high = np.percentile(values, [1, 99])
    if high - low > NEAR_CONSTANT * max(abs(low), abs(high)):
        return None
    if values.min() == values.max():
        return f"constant ({values.min():g}) inside the brain, no contrast"
    return f"near-constant ({low:g} to {high:g} over 98% of the brain), no contrast"


def read_case(case: CaseFiles, reader, num_channels: int) -> CaseImages:
    """Read every present channel file; zeros for missing and unusable channels. Raises CaseError."""
    if case.problems:
        raise case.problems[0]
    if not case.files:
        raise CaseError(case.case, None, "no channel file found")
    arrays: dict[int, np.ndarray] = {}
    ref = ref_file = properties = None
    for channel, path in sorted(case.files.items()):
        data, props = _read_channel(case.case, path, reader)
        geometry = (tuple(data.shape), _geometry(props))
        if ref is None:
            ref, ref_file, properties = geometry, path, props
        else:
            _check_same_geometry(case.case, ref_file, ref, path, geometry)
        arrays[channel] = data
    unusable: dict[int, str] = {}
    set_to_zero: dict[int, str] = {}
    for channel, array in arrays.items():
        count, what = _count_non_finite(case.files[channel], array)
        if not count:
            continue
        if count == array.size:
            unusable[channel] = f"all {count} voxels are {what}"
        else:
            array[~np.isfinite(array)] = 0
            set_to_zero[channel] = f"{count} {what} voxels"
    zero_filled = tuple(c for c, a in arrays.items() if c not in unusable and not np.any(a))
    with_signal = [c for c in arrays if c not in unusable and c not in zero_filled]
    for channel in with_signal:
        others = [arrays[c] != 0 for c in with_signal if c != channel]
        brain = np.logical_or.reduce(others) if others else arrays[channel] != 0
        if why := _no_contrast(arrays[channel], brain):
            unusable[channel] = why
    images = np.zeros((num_channels, *ref[0]), dtype=np.float32)
    for channel, array in arrays.items():
        if channel not in unusable:
            images[channel] = array
    return CaseImages(case.case, images, properties, dict(case.files), zero_filled, unusable, set_to_zero)
