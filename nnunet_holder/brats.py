"""BraTS facts, each stated once: modality names, file names per layout, label conventions, regions.

The conversion, the synthetic generator, the subsets, the evaluation and its figures, the benchmarks
and the tests import these from here. A converted dataset has the channels `MODALITIES` in that
order, nnU-Net's region labels (`NNUNET_LABELS`: 1 edema, 2 non-enhancing core, 3 enhancing, so
that whole tumour ⊃ tumour core ⊃ enhancing tumour nest), and the regions WT/TC/ET. Raw BraTS files
are `<case><separator><suffix>.nii.gz` with labels in one of two conventions: BraTS 2018–2021
(1 NCR/NET, 2 edema, 4 enhancing) and BraTS 2023+ GLI (1 NETC, 2 SNFH, 3 ET; 2024 adds 4 = resection
cavity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Modalities

MODALITIES: tuple[str, ...] = ("T1", "T1ce", "T2", "FLAIR")
"""nnU-Net channel order and dataset.json channel names of every converted dataset."""
SHORT_MODALITIES: tuple[str, ...] = ("T1", "T1c", "T2", "Fl")
"""The paper's short names of `MODALITIES`, in the same order."""
SHORT_NAMES: dict[str, str] = {
    "t1": "T1",
    "t1n": "T1",
    "t1w": "T1",
    "t1ce": "T1c",
    "t1c": "T1c",
    "t1gd": "T1c",
    "t2": "T2",
    "t2w": "T2",
    "flair": "Fl",
    "fl": "Fl",
    "t2f": "Fl",
    "t2-flair": "Fl",
    "t2_flair": "Fl",
}
"""Paper-style short names of the BraTS channel names in their known spellings (lower case)."""
FLAIR_NAMES: frozenset[str] = frozenset(k for k, v in SHORT_NAMES.items() if v == "Fl")
"""Every lower-case spelling of FLAIR that `SHORT_NAMES` knows."""

# Raw file names

SEG = "seg"
"""The role of a case's segmentation file, beside the modalities."""


@dataclass(frozen=True)
class FileNaming:
    """How a BraTS release names a case's files: `<case><separator><suffix>.nii.gz`."""

    separator: str
    suffixes: Mapping[str, str]
    """Role (a modality of `MODALITIES`, or `SEG`) -> file-name suffix."""

    @property
    def roles(self) -> dict[str, str]:
        """File-name suffix -> role, for recognising a file."""
        return {suffix: role for role, suffix in self.suffixes.items()}

    def file_name(self, case_id: str, role: str, ext: str = ".nii.gz") -> str:
        return f"{case_id}{self.separator}{self.suffixes[role]}{ext}"


FILE_NAMING: dict[str, FileNaming] = {
    "2018": FileNaming("_", {"T1": "t1", "T1ce": "t1ce", "T2": "t2", "FLAIR": "flair", SEG: "seg"}),
    "2023": FileNaming("-", {"T1": "t1n", "T1ce": "t1c", "T2": "t2w", "FLAIR": "t2f", SEG: "seg"}),
}
"""File naming by label convention: the 2018–2021 releases share one, 2023/2024 GLI the other."""

# Label conventions

CONVENTIONS: dict[str, str] = {
    "2018": "2018",
    "2019": "2018",
    "2020": "2018",
    "2021": "2018",
    "2023": "2023",
    "2024": "2023",
}
"""BraTS year -> its label convention ('2018' for 0/1/2/4, '2023' for 0/1/2/3)."""
CONVENTION_NAMES: tuple[str, ...] = tuple(CONVENTIONS)
"""Every year `normalize_convention` accepts."""
BRATS_LABEL_NAMES: dict[str, dict[int, str]] = {
    "2018": {1: "NCR/NET", 2: "ED", 4: "ET"},
    "2023": {1: "NETC", 2: "SNFH", 3: "ET"},
}
RESECTION_CAVITY_2024 = 4
TO_NNUNET: dict[str, dict[int, int]] = {
    "2018": {0: 0, 1: 2, 2: 1, 4: 3},
    # The 2024 resection cavity is not tumour: it becomes background, with a warning per case.
    "2023": {0: 0, 1: 2, 2: 1, 3: 3, RESECTION_CAVITY_2024: 0},
}
FROM_NNUNET: dict[str, dict[int, int]] = {
    "2018": {0: 0, 1: 2, 2: 1, 3: 4},
    "2023": {0: 0, 1: 2, 2: 1, 3: 3},
}
NNUNET_LABEL_NAMES: dict[int, str] = {1: "Edema", 2: "NCR/NET", 3: "Enhancing"}
"""nnU-Net's BraTS labels (its converters map BraTS 2/1/4 to 1/2/3)."""

# Regions

WT, TC, ET = "WT", "TC", "ET"
REGION_NAMES: tuple[str, ...] = (WT, TC, ET)
NNUNET_REGIONS: tuple[tuple[int, ...], ...] = ((1, 2, 3), (2, 3), (3,))
"""WT, TC, ET as sets of nnU-Net's BraTS labels."""
NNUNET_LABELS: dict[str, int | list[int]] = {
    "background": 0,
    "whole tumor": list(NNUNET_REGIONS[0]),
    "tumor core": list(NNUNET_REGIONS[1]),
    "enhancing tumor": list(NNUNET_REGIONS[2]),
}
"""dataset.json `labels` of a converted dataset (nnU-Net's region-based BraTS datasets)."""
REGIONS_CLASS_ORDER: list[int] = [1, 2, 3]
"""dataset.json `regions_class_order`: the label each region of `NNUNET_LABELS` writes, in order."""
SHORT_REGION_NAMES: dict[str, str] = {
    "whole tumor": "WT",
    "whole tumour": "WT",
    "tumor core": "TC",
    "tumour core": "TC",
    "enhancing tumor": "ET",
    "enhancing tumour": "ET",
}
"""dataset.json region names of nnU-Net's BraTS converters and ours, shortened to `REGION_NAMES`."""


def normalize_convention(value: str | int) -> str:
    """'2018'..'2021' -> '2018' (0/1/2/4), '2023'/'2024' -> '2023' (0/1/2/3)."""
    key = str(value).strip()
    if key not in CONVENTIONS:
        raise ValueError(f"unknown BraTS label convention {value!r}; use one of {sorted(CONVENTIONS)}")
    return CONVENTIONS[key]


def brats_regions(convention: str) -> list[list[int]]:
    """WT, TC, ET as BraTS label values of `convention`.

    Derived from nnU-Net's nested regions (`NNUNET_REGIONS`) through `FROM_NNUNET`, so each region
    holds the same voxels whether a case is read in BraTS labels or in nnU-Net's.
    """
    mapping = FROM_NNUNET[normalize_convention(convention)]
    return [sorted(mapping[v] for v in region) for region in NNUNET_REGIONS]
