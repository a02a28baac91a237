"""BraTS conversion: layouts, label maps, per-case quirks, splits, overwrite safety, back-conversion."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from nnunet_holder.conversion import (
    ConversionError,
    brats_to_nnunet,
    convert_brats,
    discover,
    nnunet_to_brats,
    read_split_dir,
    to_brats,
)
from nnunet_holder.conversion.images import geometry_difference, read_geometry
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

from nnunet_holder.file_names import CONVERSION_REPORT
from nnunet_holder.predict.locate import model_folder_in
from nnunet_holder.synthetic import generate_dataset
from tests.helpers_brats import (
    EXPECTED_NNUNET,
    SPLITS_DIR,
    checksums,
    file_path,
    make_case,
    make_cases_by_copy,
    random_seg,
    read_array,
    read_split,
    write_volume,
)
from tests.helpers_nnunet import CONFIGURATION, PLANS

PREDICTION_SHAPE = (4, 5, 6)
LAYOUT_CASES = {
    "brats2018": ["HGG/Brats18_CBICA_AAB_1", "LGG/Brats18_2013_0_1"],
    "brats2019": ["HGG/BraTS19_TMC_06290_1", "LGG/BraTS19_2013_0_1"],
    "brats2020": ["BraTS20_Training_001", "BraTS20_Training_002"],
    "brats2021": ["BraTS2021_00000", "BraTS2021_00002"],
    "brats2023": ["BraTS-GLI-00000-000", "BraTS-GLI-00002-001"],
}


@pytest.fixture
def nnunet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    raw, preprocessed = tmp_path / "nnUNet_raw", tmp_path / "nnUNet_preprocessed"
    monkeypatch.setenv("nnUNet_raw", str(raw))
    monkeypatch.setenv("nnUNet_preprocessed", str(preprocessed))
    return raw, preprocessed


def _convention(layout: str) -> str:
    return "2023" if layout == "brats2023" else "2018"


@pytest.mark.parametrize("layout", sorted(LAYOUT_CASES))
def test_each_layout_is_detected_and_converted(layout: str, tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    rng = np.random.default_rng(1)
    source = tmp_path / "src" / "MICCAI_Training"
    convention = _convention(layout)
    ext = ".nii" if layout == "brats2021" else ".nii.gz"  # BraTS mirrors ship both
    sources = {
        Path(rel).name: make_case(source / rel, convention, rng, ext=ext) for rel in LAYOUT_CASES[layout]
    }

    detected, cases = discover(tmp_path / "src")
    assert detected.name == layout
    assert [c.case_id for c in cases] == sorted(sources)

    result = convert_brats(tmp_path / "src", 7, progress=False, num_processes=1)
    out = raw / "Dataset007_BraTS"
    assert result.output_dir == out
    assert result.problems == []
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
    assert meta["labels"] == {
        "background": 0,
        "whole tumor": [1, 2, 3],
        "tumor core": [2, 3],
        "enhancing tumor": [3],
    }
    assert meta["regions_class_order"] == [1, 2, 3]
    assert meta["file_ending"] == ".nii.gz" and meta["numTraining"] == 2
    assert meta["brats_convention"] == convention and meta["brats_layout"] == layout
    for case_id, files in sources.items():
        for channel, role in enumerate(("T1", "T1ce", "T2", "FLAIR")):
            converted = out / "imagesTr" / f"{case_id}_{channel:04d}.nii.gz"
            np.testing.assert_array_equal(read_array(converted), read_array(files[role]))
        labels = read_array(out / "labelsTr" / f"{case_id}.nii.gz")
        seg = read_array(files["seg"])
        expected = np.vectorize(EXPECTED_NNUNET[convention].get)(seg)
        np.testing.assert_array_equal(labels, expected)
        assert sitk.ReadImage(str(out / "labelsTr" / f"{case_id}.nii.gz")).GetPixelID() == sitk.sitkUInt8
    assert not (out / "imagesTs").exists()


def _quirky_brats2020(root: Path) -> dict[str, dict[str, Path]]:
    rng = np.random.default_rng(2)
    cases = {}
    cases["001"] = make_case(root / "BraTS20_Training_001", "2018", rng)
    cases["002"] = make_case(root / "BraTS20_Training_002", "2018", rng, omit=("T2",))
    float_seg = random_seg(rng, "2018").astype(np.float32) + np.float32(2e-4)
    cases["003"] = make_case(root / "BraTS20_Training_003", "2018", rng, seg=float_seg)
    half_seg = random_seg(rng, "2018").astype(np.float64)
    half_seg[0, 0, 3] = 1.5
    cases["004"] = make_case(root / "BraTS20_Training_004", "2018", rng, seg=half_seg)
    bad_label = random_seg(rng, "2018")
    bad_label[1, 1, 1] = 3
    cases["005"] = make_case(root / "BraTS20_Training_005", "2018", rng, seg=bad_label)
    cases["006"] = make_case(root / "BraTS20_Training_006", "2018", rng)
    t2 = cases["006"]["T2"]
    write_volume(t2, read_array(t2), spacing=(1.0, 1.0, 2.0))
    cases["007"] = make_case(root / "BraTS20_Training_007", "2018", rng)
    write_volume(cases["007"]["FLAIR"], rng.integers(0, 9, (5, 6, 8)).astype(np.int16))
    cases["008"] = make_case(root / "BraTS20_Training_008", "2018", rng)
    truncated = cases["008"]["T1ce"]
    truncated.write_bytes(truncated.read_bytes()[:-6])  # a download cut short
    cases["355"] = make_case(root / "BraTS20_Training_355", "2018", rng, omit=("seg",))
    misnamed = write_volume(
        root / "BraTS20_Training_355" / "W39_1998.09.19_Segm.nii", random_seg(rng, "2018")
    )
    cases["355"]["seg"] = misnamed
    (root / "name_mapping.csv").write_text("Grade,BraTS_2020_subject_ID\nHGG,BraTS20_Training_001\n")
    return cases


def _problems(result_or_error, case: str) -> list:
    return [p for p in result_or_error.problems if p.case == f"BraTS20_Training_{case}"]


def test_quirks_are_reported_per_case_and_good_cases_convert(tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    source = tmp_path / "brats2020"
    cases = _quirky_brats2020(source)
    before = checksums(source)

    result = convert_brats(source, 20, progress=False, num_processes=1)

    assert checksums(source) == before
    assert result.training_cases == ["BraTS20_Training_001", "BraTS20_Training_003", "BraTS20_Training_355"]
    skipped = ("002", "004", "005", "006", "007", "008")
    assert sorted(result.skipped) == [f"BraTS20_Training_{c}" for c in skipped]
    (missing,) = _problems(result, "002")
    assert (
        missing.level == "warning"
        and "missing T2" in missing.message
        and "BraTS20_Training_002_t2.nii.gz" in missing.message
    )
    (rounded,) = _problems(result, "003")
    assert (
        rounded.level == "note" and "rounded" in rounded.message and rounded.file == str(cases["003"]["seg"])
    )
    (non_integer,) = _problems(result, "004")
    assert (
        non_integer.level == "error" and "non-integer" in non_integer.message and "1.5" in non_integer.message
    )
    (unexpected,) = _problems(result, "005")
    assert unexpected.level == "error" and "unexpected label values [3]" in unexpected.message
    (spacing,) = _problems(result, "006")
    assert spacing.level == "error" and spacing.file == str(cases["006"]["T2"])
    assert "geometry mismatch" in spacing.message and "spacing" in spacing.message
    (shape,) = _problems(result, "007")
    assert shape.file == str(cases["007"]["FLAIR"]) and "shape" in shape.message
    (broken,) = _problems(result, "008")
    assert broken.level == "error" and broken.file == str(cases["008"]["T1ce"])
    assert "corrupt gzip data" in broken.message or "truncated" in broken.message
    (quirk,) = _problems(result, "355")
    assert quirk.level == "note" and "W39_1998.09.19_Segm.nii" in quirk.message and "355" in quirk.message

    out = raw / "Dataset020_BraTS"
    np.testing.assert_array_equal(
        read_array(out / "labelsTr" / "BraTS20_Training_355.nii.gz"),
        np.vectorize(EXPECTED_NNUNET["2018"].get)(read_array(cases["355"]["seg"])),
    )
    np.testing.assert_array_equal(
        read_array(out / "labelsTr" / "BraTS20_Training_003.nii.gz"),
        np.vectorize(EXPECTED_NNUNET["2018"].get)(np.rint(read_array(cases["003"]["seg"])).astype(int)),
    )
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [
        f"BraTS20_Training_{c}_{ch:04d}.nii.gz" for c in ("001", "003", "355") for ch in range(4)
    ]
    report = json.loads((out / CONVERSION_REPORT).read_text())
    assert report["training_cases"] == result.training_cases
    assert set(report["skipped"]) == set(result.skipped)
    assert len(report["problems"]) == len(result.problems)


def test_truncated_nii_image_and_seg_fail_only_their_case(tmp_path: Path, nnunet_env) -> None:
    # Cuts that keep the header: SimpleITK then reads the file without an error, so only the payload
    # check can catch them. The quirks test above covers a cut .nii.gz image channel.
    raw, _ = nnunet_env
    rng = np.random.default_rng(7)
    source = tmp_path / "src"
    make_case(source / "BraTS2021_00001", "2018", rng, ext=".nii")
    cut = {
        "BraTS2021_00002": make_case(source / "BraTS2021_00002", "2018", rng, ext=".nii")["T2"],
        "BraTS2021_00003": make_case(source / "BraTS2021_00003", "2018", rng, ext=".nii")["seg"],
        "BraTS2021_00004": make_case(source / "BraTS2021_00004", "2018", rng)["seg"],
    }
    for path in cut.values():
        path.write_bytes(path.read_bytes()[:-50])

    result = convert_brats(source, 25, progress=False, num_processes=1)

    assert result.training_cases == ["BraTS2021_00001"]
    assert sorted(result.skipped) == sorted(cut)
    for case_id, path in cut.items():
        (problem,) = [p for p in result.problems if p.case == case_id]
        assert problem.level == "error" and problem.file == str(path)
        assert "truncated file" in problem.message
    out = raw / "Dataset025_BraTS"
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [
        f"BraTS2021_00001_{ch:04d}.nii.gz" for ch in range(4)
    ]
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["BraTS2021_00001.nii.gz"]


def test_keep_partial_sends_incomplete_cases_to_imagests(tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    rng = np.random.default_rng(3)
    make_case(tmp_path / "src" / "BraTS2021_00001", "2018", rng)
    make_case(tmp_path / "src" / "BraTS2021_00005", "2018", rng, omit=("T2",))
    result = convert_brats(tmp_path / "src", 21, keep_partial=True, progress=False, num_processes=1)
    assert result.training_cases == ["BraTS2021_00001"]
    assert result.partial_cases == {"BraTS2021_00005": [0, 1, 3]}
    out = raw / "Dataset021_BraTS"
    assert sorted(p.name for p in (out / "imagesTs").iterdir()) == [
        f"BraTS2021_00005_{ch:04d}.nii.gz" for ch in (0, 1, 3)
    ]
    assert (out / "labelsTs" / "BraTS2021_00005.nii.gz").is_file()
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 1


def test_nan_voxels_follow_predicts_rule_and_the_source_is_unchanged(tmp_path: Path, nnunet_env) -> None:
    """An all-NaN image is a missing file; some NaN voxels are set to 0 in the copy, the header kept."""
    raw, _ = nnunet_env
    rng = np.random.default_rng(11)
    source = tmp_path / "src"
    make_case(source / "BraTS2021_00001", "2018", rng)
    some = make_case(source / "BraTS2021_00002", "2018", rng)["T2"]
    empty = make_case(source / "BraTS2021_00003", "2018", rng)["FLAIR"]
    values = read_array(some).astype(np.float32)
    values[1, 2, 3] = values[2, 3, 4] = np.nan
    write_volume(some, values)
    write_volume(empty, np.full(values.shape, np.nan, np.float32))
    before = checksums(source)

    result = convert_brats(source, 26, keep_partial=True, progress=False, num_processes=1)

    assert checksums(source) == before
    assert result.training_cases == ["BraTS2021_00001", "BraTS2021_00002"]
    assert result.partial_cases == {"BraTS2021_00003": [0, 1, 2]}
    (nan,) = [p for p in result.problems if p.case == "BraTS2021_00002"]
    assert nan.level == "warning" and nan.file == str(some)
    assert nan.message == "T2: 2 NaN voxels; set to 0 in the converted copy (source unchanged)"
    all_nan, missing = [p for p in result.problems if p.case == "BraTS2021_00003"]
    assert all_nan.file == str(empty)
    assert all_nan.message == f"FLAIR: all {values.size} voxels are NaN; treated as missing"
    assert missing.message.startswith("missing FLAIR") and "kept as a partial case" in missing.message
    out = raw / "Dataset026_BraTS"
    copy = out / "imagesTr" / "BraTS2021_00002_0002.nii.gz"
    # read by nibabel: SimpleITK reads NaN as 0 anyway
    converted, original = (np.asanyarray(nib.load(str(f)).dataobj) for f in (copy, some))
    np.testing.assert_array_equal(converted, np.nan_to_num(original, nan=0.0))
    assert geometry_difference(read_geometry(copy), read_geometry(some)) is None
    assert not (out / "imagesTs" / "BraTS2021_00003_0003.nii.gz").exists()


def test_a_4d_image_is_named_and_a_trailing_axis_of_one_converts(tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    rng = np.random.default_rng(12)
    source = tmp_path / "src"
    make_case(source / "BraTS2021_00001", "2018", rng)
    for case, volumes in (("BraTS2021_00002", 2), ("BraTS2021_00003", 1)):
        t1 = make_case(source / case, "2018", rng)["T1"]
        image = nib.load(str(t1))
        data = np.stack([np.asanyarray(image.dataobj)] * volumes, axis=-1)
        nib.save(nib.Nifti1Image(data, image.affine), str(t1))

    result = convert_brats(source, 27, progress=False, num_processes=1)

    assert result.training_cases == ["BraTS2021_00001", "BraTS2021_00003"]
    (four_d,) = [p for p in result.problems if p.case == "BraTS2021_00002"]
    assert four_d.level == "error" and four_d.file.endswith("BraTS2021_00002_t1.nii.gz")
    assert four_d.message == (
        "T1: the image is 4-D (size (7, 6, 5, 2)), where a 3-D single-channel volume is expected"
    )
    copy = raw / "Dataset027_BraTS" / "imagesTr" / "BraTS2021_00003_0000.nii.gz"
    data, _ = SimpleITKIO().read_images([str(copy)])  # as nnU-Net will read it
    assert data.shape == (1, *read_array(source / "BraTS2021_00001" / "BraTS2021_00001_t1.nii.gz").shape)


def test_strict_fails_and_writes_nothing(tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    _quirky_brats2020(tmp_path / "src")
    with pytest.raises(ConversionError, match="--strict") as error:
        convert_brats(tmp_path / "src", 22, strict=True, progress=False, num_processes=1)
    assert {p.level for p in error.value.problems} >= {"error", "warning"}
    assert not (raw / "Dataset022_BraTS").exists()
    assert [p.name for p in raw.iterdir()] == []  # no temporary folder left behind


def test_nothing_converts_is_an_error(tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    make_case(tmp_path / "src" / "BraTS2021_00001", "2018", np.random.default_rng(4), omit=("FLAIR",))
    with pytest.raises(ConversionError, match="no case"):
        convert_brats(tmp_path / "src", 23, progress=False, num_processes=1)
    assert list(raw.iterdir()) == []


def test_overwrite_is_refused_then_done_with_the_flag(tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    rng = np.random.default_rng(5)
    make_case(tmp_path / "a" / "BraTS2021_00001", "2018", rng)
    make_case(tmp_path / "b" / "BraTS2021_00002", "2018", rng)
    convert_brats(tmp_path / "a", 30, progress=False, num_processes=1)
    out = raw / "Dataset030_BraTS"
    before = checksums(out)
    with pytest.raises(ConversionError, match="already exists.*--overwrite"):
        convert_brats(tmp_path / "b", 30, progress=False, num_processes=1)
    assert checksums(out) == before
    convert_brats(tmp_path / "b", 30, overwrite=True, progress=False, num_processes=1)
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["BraTS2021_00002.nii.gz"]
    assert sorted(p.name for p in raw.iterdir()) == ["Dataset030_BraTS"]
    with pytest.raises(ConversionError, match="same dataset id"):
        convert_brats(tmp_path / "b", 30, name="Other", progress=False, num_processes=1)


def test_overwrite_of_a_preprocessed_and_trained_id_says_they_are_stale(
    tmp_path: Path, nnunet_env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from nnunet_holder.cli import main

    raw, preprocessed = nnunet_env
    results = tmp_path / "nnUNet_results"
    monkeypatch.setenv("nnUNet_results", str(results))
    rng = np.random.default_rng(7)
    make_case(tmp_path / "a" / "BraTS2021_00001", "2018", rng)
    make_case(tmp_path / "b" / "BraTS2021_00002", "2018", rng)
    assert main(["convert-brats", str(tmp_path / "a"), "-d", "31", "-np", "1"]) == 0
    assert "stale" not in capsys.readouterr().out
    # what nnUNetv2_plan_and_preprocess and nnUNetv2_train leave for the id (their first files)
    (preprocessed / "Dataset031_BraTS").mkdir(parents=True)
    (preprocessed / "Dataset031_BraTS" / "dataset_fingerprint.json").write_text("{}")
    model = model_folder_in(results, "Dataset031_BraTS", "nnUNetTrainer", PLANS, CONFIGURATION) / "fold_0"
    model.mkdir(parents=True)
    (model / "debug.json").write_text("{}")

    assert main(["convert-brats", str(tmp_path / "b"), "-d", "31", "-np", "1", "--overwrite"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((raw / "Dataset031_BraTS" / CONVERSION_REPORT).read_text())
    stale = {p["file"]: p for p in report["problems"] if "stale" in p["message"]}
    assert set(stale) == {str(preprocessed / "Dataset031_BraTS"), str(results / "Dataset031_BraTS")}
    assert all(p["level"] == "warning" for p in stale.values())
    assert "preprocessed data of dataset 31" in printed and "nnUNetv2_plan_and_preprocess -d 31" in printed
    assert "trained models of dataset 31" in printed and str(results / "Dataset031_BraTS") in printed


def test_missing_nnunet_raw_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("nnUNet_raw", raising=False)
    make_case(tmp_path / "src" / "BraTS2021_00001", "2018", np.random.default_rng(6))
    with pytest.raises(ConversionError, match="nnUNet_raw is not set"):
        convert_brats(tmp_path / "src", 31, progress=False)


def test_resection_cavity_of_2024_becomes_background_with_a_warning(tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    seg = random_seg(np.random.default_rng(7), "2023")
    seg[0, 0, :3] = 4
    make_case(tmp_path / "src" / "BraTS-GLI-02100-100", "2023", np.random.default_rng(8), seg=seg)
    result = convert_brats(tmp_path / "src", 24, progress=False, num_processes=1)
    (warning,) = result.problems
    assert (
        warning.level == "warning" and "resection cavity" in warning.message and "3 voxels" in warning.message
    )
    labels = read_array(raw / "Dataset024_BraTS" / "labelsTr" / "BraTS-GLI-02100-100.nii.gz")
    assert (labels[seg == 4] == 0).all()
    assert set(np.unique(labels)) == {0, 1, 2, 3}


needs_splits = pytest.mark.skipif(not SPLITS_DIR.is_dir(), reason=f"split lists not found at {SPLITS_DIR}")


@needs_splits
def test_uhved_split_files_become_splits_final_and_imagests(tmp_path: Path, nnunet_env) -> None:
    raw, preprocessed = nnunet_env
    split_dir = SPLITS_DIR / "brats2018_uhved"
    train, val, test = (read_split(split_dir / f"{part}1.txt") for part in ("train", "val", "test"))
    absent = [train[5], test[0]]
    present = [c for c in train + val + test if c not in absent]
    source = tmp_path / "MICCAI_BraTS_2018_Data_Training"
    rng = np.random.default_rng(9)
    make_cases_by_copy(source / "HGG", present[: len(present) // 2] + ["Brats18_EXTRA_001_1"], "2018", rng)
    make_cases_by_copy(source / "LGG", present[len(present) // 2 :], "2018", rng)

    result = convert_brats(source, 101, split_dir=split_dir, split=1, progress=False, num_processes=2)

    expected = [{"train": [c for c in train if c not in absent], "val": val}]
    out = raw / "Dataset101_BraTS"
    assert json.loads((out / "splits_final.json").read_text()) == expected
    assert json.loads((preprocessed / "Dataset101_BraTS" / "splits_final.json").read_text()) == expected
    assert result.preprocessed_splits_file == preprocessed / "Dataset101_BraTS" / "splits_final.json"
    test_present = sorted(c for c in test if c not in absent)
    assert sorted({p.name[: -len("_0000.nii.gz")] for p in (out / "imagesTs").iterdir()}) == test_present
    assert sorted(p.name[: -len(".nii.gz")] for p in (out / "labelsTs").iterdir()) == test_present
    assert sorted(result.training_cases) == sorted(c for c in train + val if c not in absent)
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == len(result.training_cases)
    unmatched = {p.case: p for p in result.problems if "no case folder" in p.message}
    assert sorted(unmatched) == sorted(absent)
    assert unmatched[train[5]].file == str(split_dir / "train1.txt")
    (extra,) = [p for p in result.problems if p.case == "Brats18_EXTRA_001_1"]
    assert "listed in no split file" in extra.message


@needs_splits
def test_brats2020_split_strips_grade_prefixes(tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    split_dir = SPLITS_DIR / "brats2020"
    lists = {
        part: [c[3:] for c in read_split(split_dir / f"{part}.txt")] for part in ("train", "val", "test")
    }
    assert all(c.startswith("BraTS20_Training_") for ids in lists.values() for c in ids)
    source = tmp_path / "MICCAI_BraTS2020_TrainingData"
    make_cases_by_copy(source, sorted(sum(lists.values(), [])), "2018", np.random.default_rng(10))

    result = convert_brats(source, 102, split_dir=split_dir, progress=False, num_processes=1)

    out = raw / "Dataset102_BraTS"
    assert json.loads((out / "splits_final.json").read_text()) == [
        {"train": lists["train"], "val": lists["val"]}
    ]
    assert sorted({p.name[: -len("_0000.nii.gz")] for p in (out / "imagesTs").iterdir()}) == sorted(
        lists["test"]
    )
    assert len(list((out / "imagesTr").iterdir())) == 4 * (len(lists["train"]) + len(lists["val"]))
    assert result.problems == []


def test_split_reader_rejects_ids_listed_twice(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("HG_BraTS20_Training_001\nLG_BraTS20_Training_002\n")
    (tmp_path / "test.txt").write_text("HG_BraTS20_Training_002\n")
    with pytest.raises(ValueError, match="BraTS20_Training_002 is listed twice"):
        read_split_dir(tmp_path)
    (tmp_path / "train.txt").unlink()
    with pytest.raises(ValueError, match="no split lists"):
        read_split_dir(tmp_path)


def test_test_cases_without_split_files(tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    rng = np.random.default_rng(11)
    for i in range(4):
        make_case(tmp_path / "src" / f"BraTS20_Training_{i + 1:03d}", "2018", rng)
    result = convert_brats(
        tmp_path / "src", 40, test_cases=["BraTS20_Training_002"], progress=False, num_processes=1
    )
    assert result.test_cases == ["BraTS20_Training_002"]
    assert not (raw / "Dataset040_BraTS" / "splits_final.json").exists()
    result = convert_brats(
        tmp_path / "src", 40, test_cases=1, overwrite=True, progress=False, num_processes=1
    )
    assert result.test_cases == ["BraTS20_Training_004"] and len(result.training_cases) == 3


@pytest.mark.parametrize(("convention", "values"), [("2018", (0, 1, 2, 4)), ("2023", (0, 1, 2, 3))])
def test_label_maps_are_inverse(convention: str, values: tuple[int, ...]) -> None:
    brats = np.array(values * 3, dtype=np.uint8)
    nnunet, messages = brats_to_nnunet(brats, convention)
    assert messages == []
    assert sorted(np.unique(nnunet)) == [0, 1, 2, 3]
    np.testing.assert_array_equal(nnunet_to_brats(nnunet, convention), brats)
    with pytest.raises(ValueError, match="non-integer"):
        brats_to_nnunet(np.array([0.0, np.nan]), convention)


@pytest.mark.parametrize("layout", ["brats2020", "brats2023"])
def test_round_trip_synthetic_labels(layout: str, tmp_path: Path, nnunet_env) -> None:
    raw, _ = nnunet_env
    source = generate_dataset(tmp_path / "synth", 3, spacing=4.0, seed=3, layout=layout, progress=False)
    before = checksums(source)
    result = convert_brats(source, 60, test_cases=1, progress=False, num_processes=1)
    assert result.problems == [] and result.num_converted == 3
    out = raw / "Dataset060_BraTS"
    labels = [*(out / "labelsTr").iterdir(), *(out / "labelsTs").iterdir()]
    back = to_brats(out / "labelsTr", tmp_path / "back", dataset_json=out / "dataset.json")
    back += to_brats(out / "labelsTs", tmp_path / "back", dataset_json=out / "dataset.json")
    assert len(back) == len(labels) == 3
    separator, suffix = ("_", "seg") if layout == "brats2020" else ("-", "seg")
    for path in back:
        case_id = path.name[: -len(".nii.gz")]
        original = sitk.ReadImage(str(source / case_id / f"{case_id}{separator}{suffix}.nii.gz"))
        restored = sitk.ReadImage(str(path))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(restored), sitk.GetArrayFromImage(original))
        assert restored.GetPixelID() == sitk.sitkUInt8
        assert restored.GetOrigin() == original.GetOrigin() and restored.GetSpacing() == original.GetSpacing()
        assert restored.GetDirection() == original.GetDirection()
    assert checksums(source) == before


def test_to_brats_conventions_and_safety(tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    values = np.array([0, 1, 2, 3] * 30, dtype=np.uint8).reshape(PREDICTION_SHAPE)
    write_volume(pred / "case_a.nii.gz", values, spacing=(1.0, 2.0, 3.0), origin=(5.0, 6.0, 7.0))
    written = to_brats(pred, tmp_path / "out2018")
    np.testing.assert_array_equal(read_array(written[0]), np.array([0, 2, 1, 4])[values])
    (pred / "dataset.json").write_text(json.dumps({"brats_convention": "2023", "file_ending": ".nii.gz"}))
    written = to_brats(pred, tmp_path / "out_default")
    np.testing.assert_array_equal(read_array(written[0]), np.array([0, 2, 1, 3])[values])
    written = to_brats(pred, tmp_path / "out_default", convention="2018", overwrite=True)
    np.testing.assert_array_equal(read_array(written[0]), np.array([0, 2, 1, 4])[values])
    assert sitk.ReadImage(str(written[0])).GetSpacing() == (1.0, 2.0, 3.0)
    with pytest.raises(ConversionError, match="already exist"):
        to_brats(pred, tmp_path / "out_default")
    write_volume(pred / "case_b.nii.gz", values + 1)
    with pytest.raises(ConversionError, match="1 of 2") as error:
        to_brats(pred, tmp_path / "out_bad")
    assert "case_b" in str(error.value.problems[0]) and "unexpected label values [4]" in str(
        error.value.problems[0]
    )
    assert (tmp_path / "out_bad" / "case_a.nii.gz").is_file()


def test_cli_synth_convert_and_back(tmp_path: Path, nnunet_env, capsys: pytest.CaptureFixture) -> None:
    from nnunet_holder.cli import main

    raw, _ = nnunet_env
    synth = tmp_path / "synth"
    assert main(["synth", str(synth), "--cases", "2", "--spacing", "4", "--layout", "brats2023"]) == 0
    assert main(["convert-brats", str(synth), "-d", "77", "-np", "1", "--num-test", "1"]) == 0
    printed = capsys.readouterr().out
    assert "Converted 2 cases (1 in imagesTr, 1 in imagesTs" in printed and "Skipped 0 cases." in printed
    out = raw / "Dataset077_BraTS"
    assert main(["convert-brats", str(synth), "-d", "77", "-np", "1"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (
        main(
            [
                "to-brats",
                str(out / "labelsTr"),
                str(tmp_path / "back"),
                "--dataset-json",
                str(out / "dataset.json"),
            ]
        )
        == 0
    )
    (restored,) = (tmp_path / "back").iterdir()
    original = synth / restored.name[: -len(".nii.gz")] / restored.name.replace(".nii.gz", "-seg.nii.gz")
    np.testing.assert_array_equal(read_array(restored), read_array(original))
    empty = tmp_path / "empty" / "BraTS2021_00001"
    make_case(empty, "2018", np.random.default_rng(12), omit=("T1",))
    assert main(["convert-brats", str(tmp_path / "empty"), "-d", "78", "-np", "1"]) == 1
    assert "missing T1" in capsys.readouterr().err
    assert file_path(empty, "BraTS2021_00001", "2018", "T2").is_file()
