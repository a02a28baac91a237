"""`evaluate-subsets --protocol raw` sees a subset as `predict` sees a case lacking the other files.

The test case is built so that the two protocols really differ: its T1 has a faint non-zero
background, so with T1 present nnU-Net crops nothing away and z-scores every channel over the
whole volume, while without T1 (and T2) it crops to the brain and normalises inside it. The raw
protocol must reproduce `predict` voxel for voxel on that case; the default protocol must still
reproduce `predict` on the complete case (nothing is zeroed there).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_holder.file_names import MODALITY_REPORT, SEGMENTATIONS_FOLDER, SUBSET_TABLE_MD, TIMING
from tests.helpers_nnunet import run_cli
from tests.test_predict import MODEL_ARGS

CASE = "wide"
SUBSET, SUBSET_NAME = (1, 3), "T1c+Fl"  # T1ce and FLAIR; the T1 and T2 files are removed for `predict`


def _write_case(trained, images: Path, labels: Path) -> None:
    """tiny_008 with a T1 whose background is 1 instead of 0 (the other channels keep 0 there)."""
    raw = trained["root"] / "raw" / trained["name"]
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for c in range(4):
        shutil.copy(raw / "imagesTs" / f"tiny_008_{c:04d}.nii.gz", images / f"{CASE}_{c:04d}.nii.gz")
    shutil.copy(raw / "labelsTs" / "tiny_008.nii.gz", labels / f"{CASE}.nii.gz")
    t1 = images / f"{CASE}_0000.nii.gz"
    img = sitk.ReadImage(str(t1))
    array = sitk.GetArrayFromImage(img)
    assert (array == 0).any()  # the brain does not fill the volume, so there is a background to change
    wide = sitk.GetImageFromArray(np.where(array == 0, 1.0, array).astype(np.float32))
    wide.CopyInformation(img)
    sitk.WriteImage(wide, str(t1))


def _evaluate(trained, images: Path, labels: Path, out: Path, *protocol: str) -> Path:
    run_cli(
        [
            "nnunet-holder",
            "evaluate-subsets",
            "-i",
            str(images),
            "-l",
            str(labels),
            "-o",
            str(out),
            *MODEL_ARGS,
            "--save-segmentations",
            *protocol,
        ],
        trained["env"],
    )
    return out


@pytest.fixture(scope="module")
def runs(trained, tmp_path_factory) -> dict[str, Path]:
    """One `predict` run (the complete case and the case without T1 and T2) and both evaluations."""
    root = tmp_path_factory.mktemp("protocol")
    images, labels = root / "images", root / "labels"
    _write_case(trained, images, labels)
    predict_in = root / "predict_in"
    predict_in.mkdir()
    for c in range(4):
        shutil.copy(images / f"{CASE}_{c:04d}.nii.gz", predict_in / f"{CASE}_{c:04d}.nii.gz")
        if c in SUBSET:
            shutil.copy(images / f"{CASE}_{c:04d}.nii.gz", predict_in / f"{CASE}_sub_{c:04d}.nii.gz")
    predicted = root / "predicted"
    run_cli(
        ["nnunet-holder", "predict", "-i", str(predict_in), "-o", str(predicted), *MODEL_ARGS], trained["env"]
    )
    return {
        "images": images,
        "predicted": predicted,
        "raw": _evaluate(trained, images, labels, root / "eval_raw", "--protocol", "raw"),
        "preprocessed": _evaluate(trained, images, labels, root / "eval_default"),
    }


def _seg(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_the_case_gets_another_crop_without_t1_and_t2(trained, runs):
    """Guards the test data: zeroing T1 and T2 before preprocessing must change nnU-Net's crop box."""
    folder = trained["fold"].parent
    plans = PlansManager(str(folder / "plans.json"))
    config = plans.get_configuration("3d_fullres")
    dataset_json = json.loads((folder / "dataset.json").read_text())
    reader = plans.image_reader_writer_class()
    files = [str(runs["images"] / f"{CASE}_{c:04d}.nii.gz") for c in range(4)]
    images, properties = reader.read_images(files)
    boxes = []
    for keep in ((0, 1, 2, 3), SUBSET):
        zeroed = images.copy()
        zeroed[[c for c in range(4) if c not in keep]] = 0
        _, _, props = config.preprocessor_class(verbose=False).run_case_npy(
            zeroed, None, dict(properties), plans, config, dataset_json
        )
        boxes.append(props["bbox_used_for_cropping"])
    assert boxes[0] != boxes[1], boxes


def test_raw_protocol_equals_predict_without_the_other_files(runs):
    evaluated = _seg(runs["raw"] / SEGMENTATIONS_FOLDER / SUBSET_NAME / f"{CASE}.nii.gz")
    predicted = _seg(runs["predicted"] / f"{CASE}_sub.nii.gz")
    report = {r["case"]: r for r in json.loads((runs["predicted"] / MODALITY_REPORT).read_text())}
    assert report[f"{CASE}_sub"]["used"] == ["T1ce", "FLAIR"]
    assert evaluated.shape == predicted.shape
    assert np.array_equal(evaluated, predicted), f"{int((evaluated != predicted).sum())} voxels differ"
    assert predicted.any()  # a tumour was found: the comparison is not of two empty maps


def test_default_protocol_full_set_equals_predict_on_the_complete_case(runs):
    predicted = _seg(runs["predicted"] / f"{CASE}.nii.gz")
    for protocol in ("preprocessed", "raw"):
        evaluated = _seg(runs[protocol] / SEGMENTATIONS_FOLDER / "Full" / f"{CASE}.nii.gz")
        assert np.array_equal(evaluated, predicted), protocol
    assert predicted.any()


@pytest.mark.parametrize("protocol", ["preprocessed", "raw"])
def test_tables_and_timing_name_the_protocol(runs, protocol):
    out = runs[protocol]
    assert (out / SUBSET_TABLE_MD).read_text().startswith(f"### Protocol: {protocol}: ")
    timing = json.loads((out / TIMING).read_text())
    assert timing["protocol"] == protocol and [t["case"] for t in timing["cases"]] == [CASE]
    assert len(list((out / SEGMENTATIONS_FOLDER).glob(f"*/{CASE}.nii.gz"))) == 15


def test_cli_protocol_names_are_the_runners():
    from nnunet_holder.evaluate.cli import PROTOCOL_CHOICES
    from nnunet_holder.evaluate.runner import PROTOCOLS

    assert set(PROTOCOL_CHOICES) == set(PROTOCOLS)
