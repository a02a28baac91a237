"""Finding and reading the channel files of partial-modality cases.

Files are matched to channels by their nnU-Net suffix (`CASE_XXXX<ending>`), never by their
position in a listing, so a missing file leaves a gap instead of shifting the later channels.
Each present file is first checked for truncation (NIfTI only, see `check_intact`), then read on
its own with the plans' reader and checked against the case's other files (shape, spacing,
origin, direction); a missing channel becomes a zero array, which nnU-Net's preprocessing keeps
exactly zero. Problems raise `CaseError` naming the case and file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnunet_holder.conversion.images import check_payload

# SimpleITK reads a NIfTI file cut short without an error, so its payload is checked against its
# header first. Only NIfTI states its payload size in a header that check_payload understands;
# files with other endings (.mha, .nrrd, .png, ...) go to the plans' reader unchecked, as before.
_CHECKED_ENDINGS = (".nii", ".nii.gz")


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
    images: np.ndarray  # (M, *spatial) float32, zeros where a channel is missing
    properties: dict
    files: dict[int, Path]
    zero_filled: tuple[int, ...]  # files present but entirely zero

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.images.shape[0]) if i not in self.files)

    @property
    def present(self) -> tuple[int, ...]:
        return tuple(i for i in sorted(self.files) if i not in self.zero_filled)


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
    sitk = props.get("sitk_stuff") or {}
    return {"spacing": props.get("spacing"), "origin": sitk.get("origin"), "direction": sitk.get("direction")}


def _check_same_geometry(case: str, ref_file: Path, ref: tuple, path: Path, other: tuple) -> None:
    (ref_shape, ref_geo), (shape, geo) = ref, other
    if ref_shape != shape:
        raise CaseError(case, path, f"shape {shape} differs from {ref_shape} of {ref_file.name}")
    tolerances = {"spacing": 1e-3, "origin": 1e-2, "direction": 1e-3}
    for key, tol in tolerances.items():
        a, b = ref_geo[key], geo[key]
        if a is not None and b is not None and not np.allclose(a, b, atol=tol, rtol=0):
            raise CaseError(case, path, f"{key} {tuple(b)} differs from {tuple(a)} of {ref_file.name}")


def check_intact(case: str, path: Path) -> None:
    """Raise CaseError when a NIfTI file is truncated or its gzip stream corrupt; other files pass."""
    if not path.name.lower().endswith(_CHECKED_ENDINGS):
        return
    try:
        check_payload(path)
    except (ValueError, OSError) as e:
        raise CaseError(case, path, str(e)) from e


def read_case(case: CaseFiles, reader, num_channels: int) -> CaseImages:
    """Read every present channel file; zeros for missing channels. Raises CaseError."""
    if case.problems:
        raise case.problems[0]
    if not case.files:
        raise CaseError(case.case, None, "no channel file found")
    arrays: dict[int, np.ndarray] = {}
    ref = ref_file = properties = None
    for channel, path in sorted(case.files.items()):
        check_intact(case.case, path)
        try:
            data, props = reader.read_images([str(path)])
        except Exception as e:  # readers raise many types; the user needs the file name
            raise CaseError(case.case, path, f"unreadable: {type(e).__name__}: {e}") from e
        geometry = (tuple(data.shape[1:]), _geometry(props))
        if ref is None:
            ref, ref_file, properties = geometry, path, props
        else:
            _check_same_geometry(case.case, ref_file, ref, path, geometry)
        arrays[channel] = data[0].astype(np.float32, copy=False)
    images = np.zeros((num_channels, *ref[0]), dtype=np.float32)
    for channel, array in arrays.items():
        images[channel] = array
    zero_filled = tuple(c for c, a in arrays.items() if not np.any(a))
    return CaseImages(case.case, images, properties, dict(case.files), zero_filled)
