"""Every trainer of the package writes the subset validation table at its final validation.

The recommended trainer, `_fullHalf` modality dropout, is trained through the real
`nnUNetv2_train` on the tiny dataset; its final validation must leave the table beside nnU-Net's
summary.json (every subset of nnU-Net's validation cases, the absent channels zero-filled), and
`nnunet-holder predict` with that model must then report the expected Dice of a case's subset.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nnunet_holder.evaluate.tables import read_case_csv
from nnunet_holder.file_names import MODALITY_REPORT, PER_CASE_TABLE, SUBSET_TABLE_MD
from nnunet_holder.predict.locate import model_folder_in
from nnunet_holder.subsets import all_subsets, modality_names, subset_name
from tests.conftest import DATASET_ID, train_command, train_env
from tests.helpers_nnunet import CHANNELS, CONFIGURATION, PLANS, run_cli

TRAINER = "nnUNetTrainerModalityDropout_fullHalf_smoke"


def test_dropout_training_writes_the_table_and_predict_expects_dice(tiny_dataset, tmp_path):
    env = {**train_env(tiny_dataset["env"]), "nnUNet_results": str(tmp_path / "results")}
    run_cli(train_command(TRAINER), env, timeout=900)
    model = model_folder_in(tmp_path / "results", tiny_dataset["name"], TRAINER, PLANS, CONFIGURATION)
    fold = model / "fold_0"
    validation = fold / "validation"
    nnunet_cases = {
        c["prediction_file"].rsplit("/", 1)[-1].removesuffix(".nii.gz")
        for c in json.loads((validation / "summary.json").read_text())["metric_per_case"]
    }
    rows = read_case_csv(validation / PER_CASE_TABLE)
    names = [subset_name(s, modality_names(CHANNELS)) for s in all_subsets(len(CHANNELS))]
    assert {r["case"] for r in rows} == nnunet_cases
    assert sorted((r["case"], r["subset"]) for r in rows) == sorted(
        (c, n) for c in nnunet_cases for n in names
    )
    assert "Full" in (validation / SUBSET_TABLE_MD).read_text()

    # tiny_009 without its T1ce and T2 files: T1 + FLAIR
    source = tiny_dataset["root"] / "raw" / tiny_dataset["name"] / "imagesTs"
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for f in source.glob("tiny_009_*.nii.gz"):
        if f.name[-11:-7] not in ("0001", "0002"):
            shutil.copy(f, inputs / f.name)
    run_cli(
        ["nnunet-holder", "predict", "-i", str(inputs), "-o", str(out), "-d", str(DATASET_ID), "-c",
         "3d_fullres", "-tr", TRAINER, "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0",
         "--disable_progress_bar"],
        env,
    )
    (report,) = json.loads((out / MODALITY_REPORT).read_text())
    expected = report["expected_dice"]
    assert expected is not None, report["expected"]
    assert expected["subset"] == "T1+Fl" and "validation of fold 0" in expected["source"]
    et = [r["Dice_ET"] for r in rows if r["subset"] == "T1+Fl"]
    assert expected["dice"]["ET"] == pytest.approx([np.mean(et), np.std(et)])
