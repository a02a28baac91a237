"""Fabricated BraTS raw folders for the conversion tests: tiny volumes under the real layouts' names.

Each layout's case-folder and file naming is written out literally here (not taken from the code under
test), so a naming mistake in the conversion cannot hide behind the same mistake in the fixture.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SPLITS_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "splits"
SHAPE = (5, 6, 7)  # numpy (z, y, x)
ROLES = ("T1", "T1ce", "T2", "FLAIR", "seg")
SUFFIXES = {
    "2018": ("_", {"T1": "t1", "T1ce": "t1ce", "T2": "t2", "FLAIR": "flair", "seg": "seg"}),
    "2023": ("-", {"T1": "t1n", "T1ce": "t1c", "T2": "t2w", "FLAIR": "t2f", "seg": "seg"}),
}
BRATS_LABELS = {"2018": (0, 1, 2, 4), "2023": (0, 1, 2, 3)}
# nnU-Net region labels expected after conversion, written out independently of conversion/labels.py
EXPECTED_NNUNET = {"2018": {0: 0, 1: 2, 2: 1, 4: 3}, "2023": {0: 0, 1: 2, 2: 1, 3: 3}}


def write_volume(
    path: Path,
    array: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    origin: tuple[float, float, float] = (0.0, -239.0, 0.0),
) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def file_path(folder: Path, case_id: str, convention: str, role: str, ext: str = ".nii.gz") -> Path:
    separator, suffixes = SUFFIXES[convention]
    return folder / f"{case_id}{separator}{suffixes[role]}{ext}"


def random_seg(rng: np.random.Generator, convention: str, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    values = np.array(BRATS_LABELS[convention], dtype=np.uint8)
    seg = values[rng.integers(0, len(values), shape)]
    seg.flat[: len(values)] = values  # every label present
    return seg


def make_case(
    folder: Path,
    convention: str,
    rng: np.random.Generator,
    omit: tuple[str, ...] = (),
    seg: np.ndarray | None = None,
    ext: str = ".nii.gz",
) -> dict[str, Path]:
    """A case folder named like the case, with random int16 images and a seg (or the given one)."""
    case_id = folder.name
    written = {}
    for role in ROLES:
        if role in omit:
            continue
        path = file_path(folder, case_id, convention, role, ext)
        if role == "seg":
            values = random_seg(rng, convention) if seg is None else seg
        else:
            values = rng.integers(0, 1000, SHAPE).astype(np.int16)
        written[role] = write_volume(path, values)
    return written


def make_cases_by_copy(root: Path, case_ids: list[str], convention: str, rng: np.random.Generator) -> None:
    """Many cases cheaply: one set of files written, then copied under every case's names."""
    model = root / ".model"
    files = make_case(model / "MODEL", convention, rng)
    for case_id in case_ids:
        folder = root / case_id
        folder.mkdir(parents=True)
        for role, path in files.items():
            shutil.copyfile(path, file_path(folder, case_id, convention, role))
    shutil.rmtree(model)


def read_array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_split(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
