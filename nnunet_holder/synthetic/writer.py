"""Writing synthetic cases in the real BraTS raw layouts: 2020 (`BraTS20_Training_001/…_t1.nii.gz`,
labels 0/1/2/4, plus `name_mapping.csv`) and 2023 GLI (`BraTS-GLI-00001-000/…-t1n.nii.gz`, labels 0/1/2/3).

Headers follow BraTS: ITK direction identity (LPS), origin (0, -239, 0) at 1 mm, images int16, seg uint8.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunet_holder.brats import FILE_NAMING, FROM_NNUNET, SEG, TO_NNUNET
from nnunet_holder.synthetic.anatomy import Grid

LAYOUT_NAMES: tuple[str, ...] = ("brats2020", "brats2023")
_CONVENTION = {"brats2020": "2018", "brats2023": "2023"}
# BraTS 2018-2021 labels (as generated) -> the layout's own, through nnU-Net's region labels
_LABELS = {
    layout: {value: FROM_NNUNET[convention][nnunet] for value, nnunet in TO_NNUNET["2018"].items()}
    for layout, convention in _CONVENTION.items()
}
NAME_MAPPING_COLUMNS = (
    "Grade",
    "BraTS_2017_subject_ID",
    "BraTS_2018_subject_ID",
    "TCGA_TCIA_subject_ID",
    "BraTS_2019_subject_ID",
    "BraTS_2020_subject_ID",
)


def case_id(layout: str, index: int) -> str:
    if layout == "brats2020":
        return f"BraTS20_Training_{index + 1:03d}"
    return f"BraTS-GLI-{index + 1:05d}-000"


def file_name(layout: str, index: int, role: str) -> str:
    return FILE_NAMING[_CONVENTION[layout]].file_name(case_id(layout, index), role)


def _to_image(values: np.ndarray, grid: Grid) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(values.transpose(2, 1, 0)))
    image.SetSpacing((grid.spacing,) * 3)
    image.SetOrigin(grid.origin)
    image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return image


def write_case(
    images: dict[str, np.ndarray],
    labels: np.ndarray,
    grid: Grid,
    layout: str,
    index: int,
    root: Path,
    omit: tuple[str, ...] = (),
) -> Path:
    """The case's folder: a file per contrast (not those in `omit`, which the case lacks), and the seg."""
    folder = root / case_id(layout, index)
    folder.mkdir()
    for contrast, values in images.items():
        if contrast in omit:
            continue
        sitk.WriteImage(
            _to_image(values, grid), str(folder / file_name(layout, index, contrast)), useCompression=True
        )
    table = np.zeros(max(_LABELS[layout]) + 1, dtype=np.uint8)
    for source, target in _LABELS[layout].items():
        table[source] = target
    sitk.WriteImage(
        _to_image(table[labels], grid), str(folder / file_name(layout, index, SEG)), useCompression=True
    )
    return folder


def write_name_mapping(root: Path, cases: list[tuple[str, str]]) -> None:
    """BraTS 2020's name_mapping.csv: grade and the ids in earlier challenges (none for synthetic cases)."""
    with open(root / "name_mapping.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(NAME_MAPPING_COLUMNS)
        for cid, grade in cases:
            writer.writerow([grade, "NA", "NA", "NA", "NA", cid])
