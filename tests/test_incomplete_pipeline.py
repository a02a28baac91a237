"""An incomplete dataset end to end with the real nnU-Net commands: `fill-missing`, nnU-Net's
`plan_and_preprocess --verify_dataset_integrity`, `nnUNetv2_train` of HolderMITrainer_smoke (incomplete
cases in training and validation) and `evaluate-subsets` on test cases one of which lacks T1ce.

Also what nnU-Net's preprocessing does to a zero-filled channel: it stays exactly 0 (z-score of a
constant image is 0/max(std, 1e-8) = 0; crop-to-nonzero takes the union over channels).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class

from nnunet_holder.availability import ABSENT_KEY
from nnunet_holder.subsets import all_subsets, subset_name
from tests.conftest import train_env
from tests.helpers_nnunet import make_raw_dataset, nnunet_env, run_cli

SOURCE_ID, DATASET_ID = 533, 534
NAME = f"Dataset{DATASET_ID:03d}_Tiny"
TRAINER = "HolderMITrainer_smoke"
MISSING_TRAIN = {"tiny_001": (1,), "tiny_002": (1, 3), "tiny_004": (2,)}  # case -> channels without a file
VALIDATION = ["tiny_000", "tiny_002", "tiny_004"]  # two incomplete validation cases
MISSING_TEST = ("tiny_009", 1)  # a test case without T1ce


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("incomplete_pipeline")
    env = nnunet_env(root)
    source = make_raw_dataset(root / "raw", SOURCE_ID, num_train=8, num_test=3)
    for case, channels in MISSING_TRAIN.items():
        for c in channels:
            (source / "imagesTr" / f"{case}_{c:04d}.nii.gz").unlink()
    case, channel = MISSING_TEST
    (source / "imagesTs" / f"{case}_{channel:04d}.nii.gz").unlink()
    run_cli(["nnunet-holder", "fill-missing", str(SOURCE_ID), "-d", str(DATASET_ID)], env)
    plan = ["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres"]
    run_cli([*plan, "-np", "1", "-npfp", "1", "--verify_dataset_integrity"], env)
    preprocessed = root / "preprocessed" / NAME
    train = [f"tiny_{i:03d}" for i in range(8) if f"tiny_{i:03d}" not in VALIDATION]
    (preprocessed / "splits_final.json").write_text(json.dumps([{"train": train, "val": VALIDATION}]))
    run_cli(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "0", "-tr", TRAINER, "-device", "cpu"],
            train_env(env), timeout=2400)
    evaluation = root / "evaluation"
    raw = root / "raw" / NAME
    run_cli(["nnunet-holder", "evaluate-subsets", "-i", str(raw / "imagesTs"), "-l", str(raw / "labelsTs"),
             "-o", str(evaluation), "-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0", "-tr", TRAINER,
             "-device", "cpu", "-npp", "0", "-nps", "0"], env, timeout=1800)
    fold = root / "results" / NAME / f"{TRAINER}__nnUNetPlans__3d_fullres" / "fold_0"
    return {"root": root, "preprocessed": preprocessed, "fold": fold, "evaluation": evaluation}


def _record_names() -> dict[str, list[str]]:
    names = ("T1", "T1ce", "T2", "FLAIR")
    return {case: [names[c] for c in channels] for case, channels in MISSING_TRAIN.items()}


def test_the_record_reaches_the_trainer_and_zero_filled_channels_stay_zero(pipeline) -> None:
    dataset_json = json.loads((pipeline["preprocessed"] / "dataset.json").read_text())
    assert dataset_json[ABSENT_KEY] == _record_names()  # nnU-Net's planner copied it unchanged
    folder = pipeline["preprocessed"] / "nnUNetPlans_3d_fullres"
    dataset = infer_dataset_class(str(folder))(str(folder), ["tiny_002"])
    data, seg, _, _ = dataset.load_case("tiny_002")
    data = np.asarray(data[:])
    assert not data[1].any() and not data[3].any()  # z-scored zero-filled channels: exactly 0
    inside = np.asarray(seg[:])[0] >= 0  # nnU-Net's nonzero mask: the brain of the present channels
    for c in (0, 2):
        assert abs(data[c][inside].mean()) < 1e-3 and abs(data[c][inside].std() - 1) < 1e-3
    plans = json.loads((pipeline["preprocessed"] / "nnUNetPlans.json").read_text())
    assert set(plans["configurations"]["3d_fullres"]["normalization_schemes"]) == {"ZScoreNormalization"}


def _subsets_without(channel: int) -> set[str]:
    """The names of the 7 subsets of the BraTS channels other than `channel`."""
    return {subset_name(s, ("T1", "T1c", "T2", "Fl")) for s in all_subsets(4) if channel not in s}


def test_training_logs_and_validates_incomplete_cases_on_their_subsets(pipeline) -> None:
    fold = pipeline["fold"]
    assert (fold / "checkpoint_final.pth").is_file()
    with (fold / "validation" / "subset_metrics_per_case.csv").open() as f:
        rows = list(csv.DictReader(f))
    subsets = {case: {r["subset"] for r in rows if r["case"] == case} for case in VALIDATION}
    assert len(subsets["tiny_000"]) == 15
    assert subsets["tiny_002"] == {"T1", "T2", "T1+T2"}  # lacks T1c and Fl
    assert subsets["tiny_004"] == _subsets_without(2)  # lacks T2: its own full set is "~T2"
    table = json.loads((fold / "validation" / "subset_table.json").read_text())
    assert table["Full"]["Dice_WT"]["n"] == 1 and table["T1"]["Dice_WT"]["n"] == 3
    assert "| cases |" in (fold / "validation" / "subset_table.md").read_text()


def test_evaluate_subsets_scores_an_incomplete_test_case_on_the_subsets_it_has(pipeline) -> None:
    evaluation = pipeline["evaluation"]
    with (evaluation / "subset_metrics_per_case.csv").open() as f:
        rows = list(csv.DictReader(f))
    case, _ = MISSING_TEST
    incomplete = {r["subset"] for r in rows if r["case"] == case}
    assert incomplete == _subsets_without(1) and "Full" not in incomplete  # lacks T1c
    table = json.loads((evaluation / "subset_table.json").read_text())
    assert table["Full"]["Dice_WT"]["n"] == 2 and table["T1c"]["Dice_WT"]["n"] == 2
    assert table["Fl"]["Dice_WT"]["n"] == 3 and table["~T1c"]["Dice_WT"]["n"] == 3
    markdown = (evaluation / "subset_table.md").read_text()
    assert "2–3 cases (row 'cases')" in markdown and "| cases |" in markdown
