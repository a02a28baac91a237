"""Synthetic BraTS-like data: contrasts, tumour structure and size, BraTS layouts and headers, determinism."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_holder.synthetic import generate_dataset, synthesize_case
from nnunet_holder.synthetic.anatomy import Grid

SPACING = 4.0


@pytest.fixture(scope="module")
def cases() -> list:
    return [synthesize_case(i, SPACING, seed=0) for i in range(5)]


def _mean(image: np.ndarray, mask: np.ndarray) -> float:
    assert mask.any()
    return float(image[mask].mean())


def test_grid_matches_brats_field_of_view() -> None:
    assert Grid.brats(1.0).shape == (240, 240, 155) and Grid.brats(1.0).origin == (0.0, -239.0, 0.0)
    coarse = Grid.brats(4.0)
    assert coarse.shape == (60, 60, 39)
    assert coarse.origin == (1.5, -237.5, 1.5)  # centre of the first 4×4×4 block of 1 mm voxels


def test_contrasts_follow_the_radiological_picture(cases) -> None:
    for case in cases:
        labels, images, tissue = case.labels, case.images, case.anatomy.tissue
        white = (tissue["wm"] > 0.9) & (labels == 0)
        grey = (tissue["gm"] > 0.7) & (labels == 0)
        edema = labels == 2
        assert _mean(images["T1"], white) > _mean(images["T1"], grey)
        assert _mean(images["FLAIR"], edema) > _mean(images["FLAIR"], white)
        assert _mean(images["T2"], edema) > _mean(images["T2"], white)
        if case.tumour.kind.enhancing:
            enhancing = labels == 4
            assert _mean(images["T1ce"], enhancing) > _mean(images["T1ce"], white)
            assert _mean(images["T1ce"], enhancing) > 1.3 * _mean(images["T1ce"], edema)
        if case.tumour.kind.necrosis:
            necrosis = labels == 1
            assert _mean(images["T1ce"], labels == 4) > _mean(images["T1ce"], necrosis)
            assert _mean(images["T2"], necrosis) > _mean(images["T2"], white)
        csf = (tissue["csf"] > 0.8) & (labels == 0)
        if csf.any():
            assert _mean(images["FLAIR"], csf) < _mean(images["FLAIR"], white)


def test_enhancement_is_conspicuous_only_on_t1ce(cases) -> None:
    for case in (c for c in cases if c.tumour.kind.enhancing):
        enhancing, edema = case.labels == 4, case.labels == 2
        ratios = {k: _mean(im, enhancing) / _mean(im, edema) for k, im in case.images.items()}
        assert ratios["T1ce"] > 1.5
        assert all(0.6 < ratios[k] < 1.3 for k in ("T1", "T2", "FLAIR")), ratios


def test_tumours_are_nested_sized_and_varied(cases) -> None:
    kinds = [(c.tumour.kind.enhancing, c.tumour.kind.necrosis) for c in cases]
    assert (False, False) in kinds and (True, False) in kinds and (True, True) in kinds
    for case in cases:
        labels = case.labels
        assert set(np.unique(labels)) <= {0, 1, 2, 4}
        whole = labels > 0
        brain = case.anatomy.brain_mask
        assert not (whole & ~brain).any()
        assert whole.sum() >= 150  # survives 4 mm sampling
        assert 0.01 < whole.sum() / brain.sum() < 0.15  # a few % of the brain
        assert ((labels == 4).sum() >= 20) == case.tumour.kind.enhancing
        assert ((labels == 4).sum() > 0) == case.tumour.kind.enhancing
        for image in case.images.values():
            assert image.dtype == np.int16 and (image[~brain] == 0).all() and image[brain].mean() > 0


def _read(path: Path) -> sitk.Image:
    return sitk.ReadImage(str(path))


def test_brats2020_layout_names_labels_and_headers(tmp_path: Path) -> None:
    out = generate_dataset(tmp_path / "b20", 2, spacing=SPACING, seed=1, layout="brats2020", progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "BraTS20_Training_001",
        "BraTS20_Training_002",
        "name_mapping.csv",
        "synthetic_dataset.json",
    ]
    folder = out / "BraTS20_Training_001"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"BraTS20_Training_001_{s}.nii.gz" for s in ("t1", "t1ce", "t2", "flair", "seg")
    )
    t1 = _read(folder / "BraTS20_Training_001_t1.nii.gz")
    seg = _read(folder / "BraTS20_Training_001_seg.nii.gz")
    assert t1.GetSize() == (60, 60, 39) and t1.GetSpacing() == (4.0, 4.0, 4.0)
    assert t1.GetOrigin() == (1.5, -237.5, 1.5) and t1.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1)
    assert t1.GetPixelID() == sitk.sitkInt16 and seg.GetPixelID() == sitk.sitkUInt8
    assert set(np.unique(sitk.GetArrayFromImage(seg))) == {0, 1, 2, 4}
    with open(out / "name_mapping.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["BraTS_2020_subject_ID"] for r in rows] == ["BraTS20_Training_001", "BraTS20_Training_002"]
    assert {r["Grade"] for r in rows} <= {"HGG", "LGG"}


def test_brats2023_layout_names_and_labels(tmp_path: Path) -> None:
    out = generate_dataset(tmp_path / "b23", 1, spacing=SPACING, seed=1, layout="brats2023", progress=False)
    folder = out / "BraTS-GLI-00001-000"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"BraTS-GLI-00001-000-{s}.nii.gz" for s in ("t1n", "t1c", "t2w", "t2f", "seg")
    )
    seg = sitk.GetArrayFromImage(_read(folder / "BraTS-GLI-00001-000-seg.nii.gz"))
    expected = synthesize_case(0, SPACING, seed=1).labels.transpose(2, 1, 0)
    np.testing.assert_array_equal(seg, np.where(expected == 4, 3, expected))
    assert not (out / "name_mapping.csv").exists()


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    a = generate_dataset(tmp_path / "a", 2, spacing=SPACING, seed=5, progress=False)
    b = generate_dataset(tmp_path / "b", 2, spacing=SPACING, seed=5, num_processes=2, progress=False)
    c = generate_dataset(tmp_path / "c", 2, spacing=SPACING, seed=6, progress=False)
    for name in (
        "BraTS20_Training_002/BraTS20_Training_002_t1ce.nii.gz",
        "BraTS20_Training_002/BraTS20_Training_002_seg.nii.gz",
    ):
        first, again, other = (sitk.GetArrayFromImage(_read(root / name)) for root in (a, b, c))
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other)
    assert json.loads((a / "synthetic_dataset.json").read_text())["seed"] == 5


def test_output_is_never_overwritten_silently(tmp_path: Path) -> None:
    out = generate_dataset(tmp_path / "d", 1, spacing=SPACING, progress=False)
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate_dataset(out, 1, spacing=SPACING, seed=2, progress=False)
    generate_dataset(out, 2, spacing=SPACING, seed=2, overwrite=True, progress=False)
    assert (out / "BraTS20_Training_002").is_dir()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a synthetic dataset"):
        generate_dataset(foreign, 1, spacing=SPACING, overwrite=True, progress=False)
    assert (foreign / "precious.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "foreign"]  # no temporary folders left
