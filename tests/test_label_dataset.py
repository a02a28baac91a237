"""A label (softmax) dataset through the real nnU-Net commands: plan, train, predict, evaluate.

The session fixture in conftest.py trains on a region dataset (WT/TC/ET, sigmoid outputs). This
module trains HolderMITrainer_smoke on the same kind of images with plain classes in dataset.json
(background/edema/necrosis/enhancing), where nnU-Net builds a softmax over 4 output channels and
exports argmax label maps, so every code path that branches on `has_regions` runs the other way.
It uses its own dataset id and nnU-Net root so it shares nothing with the session fixture.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_holder.file_names import MODALITY_REPORT, PER_CASE_TABLE, SUBSET_TABLE, SUBSET_TABLE_MD
from nnunet_holder.predict.locate import model_folder_in
from tests.conftest import train_env
from tests.helpers_nnunet import CONFIGURATION, LABEL_CLASSES, PLANS, make_raw_dataset, nnunet_env, run_cli

DATASET_ID = 502
DATASET_NAME = f"Dataset{DATASET_ID:03d}_Tiny"
TRAINER = "HolderMITrainer_smoke"
CLASS_NAMES = [name for name, value in LABEL_CLASSES.items() if value != 0]
LABEL_VALUES = set(LABEL_CLASSES.values())
NUM_TRAIN, NUM_TEST = 6, 2
TEST_CASES = [f"tiny_{i:03d}" for i in range(NUM_TRAIN, NUM_TRAIN + NUM_TEST)]
# -npp/-nps 0 is nnUNetv2_predict's sequential mode, and ours: no worker processes (each importing
# torch) competing for the 2 cores
NNUNET_MODEL_ARGS = ["-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0", "-tr", TRAINER, "-device", "cpu"]


@pytest.fixture(scope="module")
def label_model(tmp_path_factory) -> dict:
    """Dataset502_Tiny (6 train + 2 test, label dataset.json) planned, preprocessed and trained on fold 0."""
    root = tmp_path_factory.mktemp("nnunet_labels")
    env = nnunet_env(root)
    raw = make_raw_dataset(root / "raw", DATASET_ID, num_train=NUM_TRAIN, num_test=NUM_TEST, regions=False)
    # -npfp 1: the fingerprint step otherwise spawns 8 workers; DA workers stay on for planning,
    # which crashes with nnUNet_n_proc_DA=0 (see conftest.train_env)
    plan = ["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres"]
    run_cli([*plan, "-np", "1", "-npfp", "1"], env)
    train = ["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", TRAINER, "-device", "cpu"]
    proc = run_cli(train, train_env(env), timeout=900)
    fold = model_folder_in(root / "results", DATASET_NAME, TRAINER, PLANS, CONFIGURATION) / "fold_0"
    return {"root": root, "env": env, "raw": raw, "fold": fold, "stdout": proc.stdout}


def _label_values(path: Path) -> set[int]:
    return {int(v) for v in np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(path))))}


def _assert_label_map_like(seg_path: Path, image_path: Path) -> None:
    """An exported segmentation: the image's geometry, integer voxels, only the dataset's labels."""
    seg, ref = sitk.ReadImage(str(seg_path)), sitk.ReadImage(str(image_path))
    assert seg.GetSize() == ref.GetSize() and seg.GetSpacing() == ref.GetSpacing()
    array = sitk.GetArrayFromImage(seg)
    assert np.issubdtype(array.dtype, np.integer), array.dtype
    assert set(np.unique(array).tolist()) <= LABEL_VALUES, np.unique(array)


def test_training_is_softmax_over_the_classes(label_model):
    # the trainer must have taken the label branch: 4 output channels (background + 3 classes),
    # where the region dataset gets 3 sigmoid channels
    ckpt = torch.load(label_model["fold"] / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert ckpt["trainer_name"] == TRAINER
    losses = ckpt["logging"]["train_losses"]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses), losses
    seg_heads = {
        k: v.shape for k, v in ckpt["network_weights"].items() if "seg_layers" in k and k.endswith("weight")
    }
    assert seg_heads, sorted(ckpt["network_weights"])[:20]
    assert {shape[0] for shape in seg_heads.values()} == {len(LABEL_CLASSES)}, seg_heads
    dataset_json = json.loads((label_model["fold"].parent / "dataset.json").read_text())
    assert dataset_json["labels"] == LABEL_CLASSES and "regions_class_order" not in dataset_json


def test_final_validation_writes_summary_and_subset_table(label_model):
    validation = label_model["fold"] / "validation"
    summary = json.loads((validation / "summary.json").read_text())
    # nnU-Net keys a label dataset's metrics by class value ("(1, 2, 3)"-style tuples for regions)
    assert set(summary["mean"]) == {"1", "2", "3"}, summary["mean"].keys()
    assert all(0.0 <= summary["mean"][k]["Dice"] <= 1.0 for k in summary["mean"])
    validated = list(validation.glob("*.nii.gz"))
    assert validated and len(validated) == len(summary["metric_per_case"])
    for path in validated:
        assert _label_values(path) <= LABEL_VALUES

    table = (validation / SUBSET_TABLE_MD).read_text()
    dice_block = table.split("\n\n**")[0]
    header = next(line for line in dice_block.splitlines() if line.startswith("| Region |"))
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    assert len(columns) == 16 and columns[-1] == "Avg", columns  # 15 subsets + Avg
    assert columns[0] == "Fl" and columns[-2] == "Full" and len(set(columns)) == 16
    rows = [line.split("|")[1].strip() for line in dice_block.splitlines() if line.startswith("| ")][1:]
    assert rows == CLASS_NAMES, rows
    # the same numbers in the JSON twin: one finite Dice per subset and class, over the validation cases
    data = json.loads((validation / SUBSET_TABLE).read_text())
    assert data["metrics"] == [f"{m}_{c}" for c in CLASS_NAMES for m in ("Dice", "HD95")]
    for subset in data["order"]:
        for name in CLASS_NAMES:
            stat = data[subset][f"Dice_{name}"]
            assert stat["n"] == len(validated) and 0.0 <= stat["mean"] <= 1.0, (subset, name, stat)


def test_nnunetv2_predict_writes_label_maps(label_model, tmp_path):
    images, out = label_model["raw"] / "imagesTs", tmp_path / "out"
    run_cli(
        ["nnUNetv2_predict", "-i", str(images), "-o", str(out), *NNUNET_MODEL_ARGS, "-npp", "0", "-nps", "0"],
        label_model["env"],
    )
    for case in TEST_CASES:
        _assert_label_map_like(out / f"{case}.nii.gz", images / f"{case}_0000.nii.gz")


def test_holder_predict_with_a_missing_modality(label_model, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    shutil.copytree(label_model["raw"] / "imagesTs", inp)
    missing_case = TEST_CASES[1]
    (inp / f"{missing_case}_0002.nii.gz").unlink()  # T2 not acquired
    proc = run_cli(
        ["nnunet-holder", "predict", "-i", str(inp), "-o", str(out), *NNUNET_MODEL_ARGS, "-npp", "0",
         "-nps", "0"],
        label_model["env"],
    )
    assert f"predicted {NUM_TEST} of {NUM_TEST} cases" in proc.stdout, proc.stdout
    for case in TEST_CASES:
        _assert_label_map_like(out / f"{case}.nii.gz", inp / f"{case}_0000.nii.gz")
    report = {r["case"]: r for r in json.loads((out / MODALITY_REPORT).read_text())}
    assert set(report) == set(TEST_CASES)
    assert all(r["status"] == "ok" for r in report.values()), report
    assert report[missing_case]["missing"] == ["T2"]
    assert report[missing_case]["used"] == ["T1", "T1ce", "FLAIR"]
    complete = report[TEST_CASES[0]]
    assert complete["missing"] == [] and complete["used"] == ["T1", "T1ce", "T2", "FLAIR"]


def test_evaluate_subsets_on_labelled_test_cases(label_model, tmp_path):
    raw, out = label_model["raw"], tmp_path / "eval"
    run_cli(
        [
            "nnunet-holder",
            "evaluate-subsets",
            "-i",
            str(raw / "imagesTs"),
            "-l",
            str(raw / "labelsTs"),
            "-o",
            str(out),
            *NNUNET_MODEL_ARGS,
            "-npp",
            "0",
            "-nps",
            "0",
        ],
        label_model["env"],
    )
    table = json.loads((out / SUBSET_TABLE).read_text())
    assert len(table["order"]) == 15 and len(set(table["order"])) == 15
    assert table["order"][0] == "Fl" and table["order"][-1] == "Full"
    assert table["metrics"] == [f"{m}_{c}" for c in CLASS_NAMES for m in ("Dice", "HD95")]
    for subset in [*table["order"], "Average"]:
        for name in CLASS_NAMES:
            stat = table[subset][f"Dice_{name}"]
            assert stat["mean"] is not None and math.isfinite(stat["mean"]), (subset, name, stat)
            assert 0.0 <= stat["mean"] <= 1.0 and stat["n"] == NUM_TEST, (subset, name, stat)
    rows = (out / PER_CASE_TABLE).read_text().strip().splitlines()
    assert len(rows) == 1 + NUM_TEST * 15
    assert rows[0].split(",") == ["case", "subset", *table["metrics"]]
