"""Truncated NIfTI files fail their own case, naming the file, in `predict` and `evaluate-subsets`.

SimpleITK reads a `.nii.gz` or `.nii` cut short without an error (the missing voxels come back as
zeros or garbage), so these tests write real files, cut them and go through nnU-Net's own reader.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

from nnunet_holder.evaluate.sources import raw_cases
from nnunet_holder.predict.inputs import CaseError, read_case, scan_folder

SHAPE = (12, 13, 14)  # numpy (z, y, x): random int16 voxels, so gzip cannot shrink them much
CHANNELS = 2


def _write(path: Path, array: np.ndarray) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(image, str(path))
    return path


def _write_case(folder: Path, case: str, ending: str, rng: np.random.Generator) -> list[Path]:
    return [
        _write(folder / f"{case}_{c:04d}{ending}", rng.integers(1, 1000, SHAPE).astype(np.int16))
        for c in range(CHANNELS)
    ]


def _cut(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _half(path: Path) -> int:
    return path.stat().st_size // 2


CUTS = {
    "nii.gz after 300 bytes": (".nii.gz", lambda path: 300),
    "nii.gz to half": (".nii.gz", _half),
    "nii to half": (".nii", _half),
}


@pytest.mark.parametrize("ending, size", CUTS.values(), ids=CUTS.keys())
def test_truncated_channel_is_a_case_error_naming_the_file(tmp_path: Path, ending: str, size) -> None:
    _, bad = _write_case(tmp_path, "BRATS_001", ending, np.random.default_rng(0))
    _cut(bad, size(bad))
    (files,) = scan_folder(tmp_path, ending, CHANNELS)
    with pytest.raises(CaseError) as error:
        read_case(files, SimpleITKIO(), CHANNELS)
    assert error.value.case == "BRATS_001" and error.value.file == bad
    assert f"case BRATS_001 ({bad}): truncated file" in str(error.value)


def test_a_good_case_next_to_a_corrupt_one_reads(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    good = _write_case(tmp_path, "BRATS_001", ".nii.gz", rng)
    _, bad = _write_case(tmp_path, "BRATS_002", ".nii.gz", rng)
    _cut(bad, 300)
    outcomes = {}
    for files in scan_folder(tmp_path, ".nii.gz", CHANNELS):
        try:
            outcomes[files.case] = read_case(files, SimpleITKIO(), CHANNELS)
        except CaseError as e:
            outcomes[files.case] = e
    assert isinstance(outcomes["BRATS_002"], CaseError) and outcomes["BRATS_002"].file == bad
    case = outcomes["BRATS_001"]
    assert case.present == (0, 1) and case.missing == ()
    for channel, path in enumerate(good):
        np.testing.assert_array_equal(case.images[channel], sitk.GetArrayFromImage(sitk.ReadImage(str(path))))


def test_truncated_reference_label_fails_its_case_in_evaluate_subsets(tmp_path: Path) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(2)
    _write_case(images, "BRATS_001", ".nii.gz", rng)
    label = _write(labels / "BRATS_001.nii.gz", rng.integers(0, 4, SHAPE).astype(np.uint8))
    _cut(label, _half(label))
    # only the attributes raw_cases reads, holding nnU-Net's real reader and preprocessor classes
    predictor = SimpleNamespace(
        dataset_json={"file_ending": ".nii.gz", "channel_names": {"0": "T1", "1": "T2"}},
        plans_manager=SimpleNamespace(image_reader_writer_class=SimpleITKIO),
        configuration_manager=SimpleNamespace(preprocessor_class=DefaultPreprocessor),
    )
    failures: list[str] = []
    count, prepared = raw_cases(predictor, images, labels, failures)
    assert count == 1 and list(prepared) == []
    (failure,) = failures
    assert failure.startswith(f"case BRATS_001 ({label}): truncated file")
