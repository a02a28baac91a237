"""Fabricated BraTS raw folders for the conversion tests: tiny volumes under the real layouts' names.

The file naming and label values come from `nnunet_holder.brats`, the one statement of those facts;
tests/test_brats.py pins that module against the names and labels the challenges publish, so a
naming mistake there fails that test rather than hiding behind the same mistake in these fixtures.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunet_holder.brats import BRATS_LABEL_NAMES, FILE_NAMING, MODALITIES, SEG, TO_NNUNET

SPLITS_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "splits"
SHAPE = (5, 6, 7)  # numpy (z, y, x)
ROLES = (*MODALITIES, SEG)
# the label values of a raw BraTS seg (background and the convention's named labels)
BRATS_LABELS = {convention: (0, *sorted(names)) for convention, names in BRATS_LABEL_NAMES.items()}
EXPECTED_NNUNET = TO_NNUNET  # the nnU-Net region label of each raw BraTS label after conversion


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
    return folder / FILE_NAMING[convention].file_name(case_id, role, ext)


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
