"""What the case reader of `predict` and `evaluate-subsets` does with NaN voxels, channels without
contrast, 4-D files and misaligned channels read by NibabelIO: real files through nnU-Net's readers."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from nnunetv2.imageio.nibabel_reader_writer import NibabelIO
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_holder.evaluate.sources import raw_cases
from nnunet_holder.predict.inputs import CaseError, read_case, scan_folder
from nnunet_holder.predict.pipeline import ModelFiles, prepare_case

SHAPE = (14, 13, 12)  # nibabel (x, y, z)
AFFINE = np.diag([1.0, 1.0, 2.0, 1.0])
CHANNELS = 3


def _brain() -> np.ndarray:
    brain = np.zeros(SHAPE, bool)
    brain[3:11, 2:11, 2:10] = True
    return brain


def _mri(rng: np.random.Generator) -> np.ndarray:
    """Skull-stripped-like: zero outside the brain, tissue-like contrast inside."""
    return np.where(_brain(), rng.normal(400, 80, SHAPE), 0).astype(np.float32)


def _save(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def _case(
    folder: Path, case: str, rng: np.random.Generator, channels: int = CHANNELS, **replace: np.ndarray
) -> dict[int, Path]:
    """The channel files of `case`; `c1=array` writes that array as channel 1."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {c: replace.get(f"c{c}", _mri(rng)) for c in range(channels)}
    return {c: _save(folder / f"{case}_{c:04d}.nii.gz", array) for c, array in arrays.items()}


def _read(folder: Path, reader=SimpleITKIO):
    (files,) = scan_folder(folder, ".nii.gz", CHANNELS)
    return read_case(files, reader(), CHANNELS)


READERS = {"SimpleITKIO": SimpleITKIO, "NibabelIO": NibabelIO}


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_nan_voxels_are_set_to_zero_and_an_all_nan_file_is_missing(tmp_path: Path, reader) -> None:
    rng = np.random.default_rng(0)
    some = _mri(rng)
    some[5, 5, 5] = some[6, 6, 6] = some[0, 0, 0] = np.nan
    files = _case(tmp_path, "pat", rng, c1=some, c2=np.full(SHAPE, np.nan, np.float32))
    case = _read(tmp_path, reader)
    assert case.present == (0, 1) and case.zero_filled == ()
    assert case.unusable == {2: f"all {some.size} voxels are NaN"}
    assert case.notes == [
        f"{files[1].name}: 3 NaN voxels set to 0",
        f"{files[2].name}: all {some.size} voxels are NaN; treated as missing",
    ]
    assert np.isfinite(case.images).all() and not case.images[2].any()
    expected = np.nan_to_num(some, nan=0.0).transpose(2, 1, 0)  # nnU-Net's readers: (z, y, x)
    np.testing.assert_array_equal(case.images[1], expected)


def test_nan_voxels_of_a_file_other_than_nifti_are_counted_too(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for c in range(CHANNELS):
        array = _mri(rng)
        if c == 1:
            array[4, 4, 4] = np.inf
            array[5, 5, 5] = np.nan
        sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / f"pat_{c:04d}.mha"))
    (files,) = scan_folder(tmp_path, ".mha", CHANNELS)
    case = read_case(files, SimpleITKIO(), CHANNELS)
    assert case.notes == ["pat_0001.mha: 2 NaN or infinite voxels set to 0"]
    assert np.isfinite(case.images).all() and case.present == (0, 1, 2)


@pytest.mark.parametrize("flat", ["constant", "near-constant"])
def test_a_channel_without_contrast_in_the_brain_is_treated_as_missing(tmp_path: Path, flat: str) -> None:
    rng = np.random.default_rng(2)
    # 100 everywhere (the probe's T1c), or 100 with a ripple far below any tissue contrast
    array = np.full(SHAPE, 100, np.float32)
    if flat == "near-constant":
        array += rng.normal(0, 0.01, SHAPE).astype(np.float32)
    files = _case(tmp_path, "pat", rng, c1=array)
    case = _read(tmp_path)
    assert case.present == (0, 2) and list(case.unusable) == [1]
    (note,) = case.notes
    assert note.startswith(f"{files[1].name}: {flat} (") and note.endswith("no contrast; treated as missing")
    assert not case.images[1].any()  # zero, as a missing channel: nnU-Net keeps it zero


def test_real_channels_keep_their_contrast(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    _case(tmp_path / "full", "pat", rng)
    (tmp_path / "one").mkdir()
    _save(tmp_path / "one" / "pat_0001.nii.gz", _mri(rng))  # the only channel: its own non-zero is the brain
    assert _read(tmp_path / "full").present == (0, 1, 2) and _read(tmp_path / "one").present == (1,)


def test_a_4d_file_is_named_as_4d_and_a_trailing_axis_of_one_is_read(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    volume = _mri(rng)
    _case(tmp_path / "time", "pat", rng, c1=np.stack([volume, volume], axis=-1))
    with pytest.raises(CaseError, match=r"pat_0001.nii.gz\): the image is 4-D \(14, 13, 12, 2\), where a 3"):
        _read(tmp_path / "time")
    _case(tmp_path / "single", "pat", rng, c1=volume[..., None])
    case = _read(tmp_path / "single")
    np.testing.assert_array_equal(case.images[1], volume.transpose(2, 1, 0))
    with pytest.raises(CaseError, match=r"pat_0001.nii.gz\): .*the header is 4-D \(14, 13, 12, 1\)"):
        _read(tmp_path / "single", NibabelIO)  # nnU-Net's NibabelIO reads 3-D files only


def test_a_4d_mha_file_is_named_as_4d(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for c in range(CHANNELS):
        array = np.stack([_mri(rng)] * 2) if c == 2 else _mri(rng)
        sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / f"pat_{c:04d}.mha"))
    (files,) = scan_folder(tmp_path, ".mha", CHANNELS)
    with pytest.raises(CaseError, match=r"pat_0002.mha\): the image is 4-D \(2 volumes of"):
        read_case(files, SimpleITKIO(), CHANNELS)


def _shifted(affine: np.ndarray) -> np.ndarray:
    moved = affine.copy()
    moved[:3, 3] += (5.0, 0.0, 0.0)
    return moved


def _flipped(affine: np.ndarray) -> np.ndarray:
    return affine @ np.diag([-1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("key, change", [("origin", _shifted), ("direction", _flipped)])
def test_nibabel_channels_must_share_origin_and_direction(tmp_path: Path, key: str, change) -> None:
    rng = np.random.default_rng(6)
    _case(tmp_path, "pat", rng)
    moved = _save(tmp_path / "pat_0002.nii.gz", _mri(rng), change(AFFINE))
    with pytest.raises(CaseError) as error:
        _read(tmp_path, NibabelIO)
    assert error.value.file == moved and f"): {key} " in str(error.value)
    assert "pat_0000.nii.gz" in str(error.value)  # the file it differs from


def test_aligned_nibabel_channels_read(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    oblique = AFFINE.copy()
    oblique[:3, :3] = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    oblique[:3, 3] = (-90.0, 120.0, -60.0)
    for c in range(CHANNELS):
        _save(tmp_path / f"pat_{c:04d}.nii.gz", _mri(rng), oblique)
    assert _read(tmp_path, NibabelIO).present == (0, 1, 2)


def test_evaluate_subsets_applies_the_same_rule(tiny_dataset, tmp_path: Path, capsys) -> None:
    """A channel file that is all NaN or has no contrast is a missing modality: the case is evaluated
    on the subsets of the others (incomplete), with notes naming the file; a case with no usable
    channel fails alone."""
    preprocessed = Path(tiny_dataset["env"]["nnUNet_preprocessed"]) / tiny_dataset["name"]
    plans = PlansManager(str(preprocessed / "nnUNetPlans.json"))
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    # only the attributes raw_cases reads, holding the planned dataset's real nnU-Net objects
    config = plans.get_configuration("3d_fullres")
    predictor = SimpleNamespace(dataset_json=dataset_json, plans_manager=plans, configuration_manager=config)
    channels = len(dataset_json["channel_names"])
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(8)
    some = _mri(rng)
    some[5, 5, 5] = np.nan
    nan, flat = np.full(SHAPE, np.nan, np.float32), np.full(SHAPE, 100, np.float32)
    all_nan = _case(images, "all_nan", rng, channels, c0=nan)[0]
    constant = _case(images, "constant", rng, channels, c2=flat)[2]
    with_nan = _case(images, "with_nan", rng, channels, c1=some)[1]
    _case(images, "nothing", rng, channels, **{f"c{c}": nan for c in range(channels)})
    for case in ("all_nan", "constant", "with_nan", "nothing"):
        _save(labels / f"{case}.nii.gz", _brain().astype(np.uint8))

    failures: list[str] = []
    count, prepared = raw_cases(predictor, images, labels, failures)
    cases = {case.case: case for case in prepared}
    assert count == 4 and sorted(cases) == ["all_nan", "constant", "with_nan"]
    assert cases["all_nan"].available == (1, 2, 3) and cases["constant"].available == (0, 1, 3)
    assert cases["with_nan"].available is None and torch.isfinite(cases["with_nan"].data).all()
    assert len(failures) == 1 and failures[0].startswith("case nothing: no usable modality")
    out = capsys.readouterr().out
    assert f"NOTE case with_nan: {with_nan.name}: 1 NaN voxels set to 0" in out
    assert f"NOTE case all_nan: {all_nan.name}: all {some.size} voxels are NaN; treated as missing" in out
    assert f"NOTE case constant: {constant.name}: constant (100) inside the brain, no contrast" in out
    assert "NOTE case constant: incomplete: scored on the subsets of channels [0, 1, 3] only" in out


def test_a_case_whose_every_file_is_nan_or_flat_fails_alone_naming_them(tiny_dataset, tmp_path: Path) -> None:
    preprocessed = Path(tiny_dataset["env"]["nnUNet_preprocessed"]) / tiny_dataset["name"]
    plans = PlansManager(str(preprocessed / "nnUNetPlans.json"))
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    model = ModelFiles(plans, plans.get_configuration("3d_fullres"), dataset_json)
    rng = np.random.default_rng(9)
    nan, flat = np.full(SHAPE, np.nan, np.float32), np.full(SHAPE, 100, np.float32)
    files = _case(tmp_path, "pat", rng, 2, c0=nan, c1=flat)
    (case,) = scan_folder(tmp_path, ".nii.gz", len(dataset_json["channel_names"]))
    report, data, _ = prepare_case(case, model, None)
    assert report.status == "failed" and data is None
    assert report.error.startswith("case pat: no usable modality: every channel is missing, all zero, all")
    assert f"{files[0].name}: all {nan.size} voxels are NaN" in report.error
    assert f"{files[1].name}: constant (100) inside the brain" in report.error
