"""HolderMITrainer_featureFusion through the real nnU-Net commands: `nnUNetv2_train` (with its final
validation and subset table), `nnUNetv2_predict` on a zero-filled case and `nnunet-holder predict`
on a case whose files are missing. Marked slow (a fourth real training in the suite; `make test-all`):
the default suite keeps the trainer's train and validation steps on nnU-Net's own objects
(tests/test_trainer.py) and the one-pass evaluation in the real predictor (tests/test_predict.py)."""

from __future__ import annotations

import shutil

import pytest
import SimpleITK as sitk
import torch

from nnunet_holder.file_names import SUBSET_TABLE_MD
from nnunet_holder.predict.locate import model_folder_in
from tests.conftest import DATASET_ID, train_command, train_env
from tests.helpers_nnunet import CONFIGURATION, PLANS, run_cli

pytestmark = pytest.mark.slow

TRAINER = "HolderMITrainer_featureFusion_smoke"
MODEL = ["-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0", "-tr", TRAINER, "-device", "cpu"]


def test_train_validate_and_predict_with_missing_modalities(tiny_dataset, tmp_path):
    run_cli(train_command(TRAINER), train_env(tiny_dataset["env"]), timeout=900)
    results = tiny_dataset["root"] / "results"
    model = model_folder_in(results, tiny_dataset["name"], TRAINER, PLANS, CONFIGURATION)
    fold = model / "fold_0"
    ckpt = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    weights = ckpt["network_weights"]
    assert any(k.startswith("encoder.") for k in weights) and any(k.startswith("decoder.") for k in weights)
    assert not any(k.startswith("backbone.") for k in weights)
    assert "Full" in (fold / "validation" / SUBSET_TABLE_MD).read_text()

    src = tiny_dataset["root"] / "raw" / tiny_dataset["name"] / "imagesTs"
    zero_filled, missing = tmp_path / "zero_filled", tmp_path / "missing"
    zero_filled.mkdir()
    missing.mkdir()
    for c in range(4):
        shutil.copy(src / f"tiny_008_000{c}.nii.gz", zero_filled)
        if c in (1, 3):  # T1c and FLAIR only
            shutil.copy(src / f"tiny_008_000{c}.nii.gz", missing)
    image = sitk.ReadImage(str(zero_filled / "tiny_008_0000.nii.gz"))
    sitk.WriteImage(image * 0, str(zero_filled / "tiny_008_0000.nii.gz"))
    sitk.WriteImage(image * 0, str(zero_filled / "tiny_008_0002.nii.gz"))
    env = tiny_dataset["env"]
    run_cli(["nnUNetv2_predict", "-i", str(zero_filled), "-o", str(tmp_path / "a"), *MODEL,
             "-npp", "0", "-nps", "0"], env)
    run_cli(["nnunet-holder", "predict", "-i", str(missing), "-o", str(tmp_path / "b"), *MODEL], env)
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "a" / "tiny_008.nii.gz")))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "b" / "tiny_008.nii.gz")))
    assert a.shape == b.shape == sitk.GetArrayFromImage(image).shape
    # nnU-Net's path (availability from each tile's non-zero channels) and ours (from the case's
    # files) agree wherever every tile holds both present channels, as on this small case
    assert (a == b).mean() > 0.99
