"""The BraTS facts of `nnunet_holder.brats` against what the challenges publish, written out here once.

Everything else (conversion, generator, fixtures) takes these facts from the module, so this is the
test where a wrong suffix, label value or region would show.
"""

from __future__ import annotations

import pytest

from nnunet_holder.brats import (
    FILE_NAMING,
    FLAIR_NAMES,
    MODALITIES,
    NNUNET_LABELS,
    REGION_NAMES,
    SHORT_MODALITIES,
    SHORT_NAMES,
    TO_NNUNET,
    brats_regions,
    normalize_convention,
)
from nnunet_holder.subsets import modality_names


def test_file_names_of_each_release() -> None:
    # BraTS 2020: BraTS20_Training_001/BraTS20_Training_001_t1ce.nii.gz; 2023 GLI: ...-000-t1c.nii.gz
    assert [FILE_NAMING["2018"].file_name("BraTS20_Training_001", r) for r in (*MODALITIES, "seg")] == [
        f"BraTS20_Training_001_{s}.nii.gz" for s in ("t1", "t1ce", "t2", "flair", "seg")
    ]
    assert [FILE_NAMING["2023"].file_name("BraTS-GLI-00000-000", r) for r in (*MODALITIES, "seg")] == [
        f"BraTS-GLI-00000-000-{s}.nii.gz" for s in ("t1n", "t1c", "t2w", "t2f", "seg")
    ]
    assert FILE_NAMING["2023"].roles["t2f"] == "FLAIR"


@pytest.mark.parametrize(
    ("year", "convention", "labels"),
    [("2018", "2018", {0: 0, 1: 2, 2: 1, 4: 3}), ("2021", "2018", None), ("2024", "2023", None)],
)
def test_label_conventions(year: str, convention: str, labels: dict | None) -> None:
    assert normalize_convention(year) == convention
    if labels is not None:
        assert TO_NNUNET[convention] == labels
    # 2023+: 1 NETC -> core, 2 SNFH -> edema, 3 ET -> enhancing, 4 (2024 resection cavity) -> background
    assert TO_NNUNET["2023"] == {0: 0, 1: 2, 2: 1, 3: 3, 4: 0}


def test_unknown_convention_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="2022.*2018"):
        normalize_convention("2022")


def test_regions_in_each_labelling() -> None:
    assert NNUNET_LABELS == {
        "background": 0,
        "whole tumor": [1, 2, 3],
        "tumor core": [2, 3],
        "enhancing tumor": [3],
    }
    assert REGION_NAMES == ("WT", "TC", "ET")
    assert brats_regions("2020") == [[1, 2, 4], [1, 4], [4]]
    assert brats_regions("2023") == [[1, 2, 3], [1, 3], [3]]


def test_short_names_cover_both_releases_spellings() -> None:
    assert SHORT_MODALITIES == ("T1", "T1c", "T2", "Fl")
    for naming in FILE_NAMING.values():
        channels = {str(i): naming.suffixes[m] for i, m in enumerate(MODALITIES)}
        assert modality_names(channels) == SHORT_MODALITIES
    assert modality_names({str(i): m for i, m in enumerate(MODALITIES)}) == SHORT_MODALITIES
    assert {"flair", "t2f", "fl", "t2-flair"} <= FLAIR_NAMES and "t2" not in FLAIR_NAMES
    assert all(key == key.lower() for key in SHORT_NAMES)
