"""The distillation trainers: their loss carries the KD term (in-process, on nnU-Net's own objects), and
each network trains through the real `nnUNetv2_train` and predicts with `nnunet-holder predict` on a
case whose files lack two modalities. The real trainings are marked slow (`make test-all`), as
tests/test_feature_fusion_trainer.py is."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from nnunetv2.run.run_training import get_trainer_from_args

from nnunet_holder.file_names import SUBSET_TABLE_MD
from nnunet_holder.predict.locate import model_folder_in
from tests.conftest import DATASET_ID, train_command, train_env
from tests.helpers_nnunet import CONFIGURATION, PLANS, run_cli

NETWORKS = ("inputFusion", "featureFusion")


@pytest.mark.parametrize("network", NETWORKS)
def test_the_distillation_trainer_adds_the_kd_term_and_its_sibling_does_not(in_nnunet_env, network):
    parts = {}
    for name in (f"HolderMITrainer_{network}_distill_smoke", f"HolderMITrainer_{network}_smoke"):
        trainer = get_trainer_from_args(str(DATASET_ID), "3d_fullres", 0, name, device=torch.device("cpu"))
        trainer.initialize()
        dl_train, _ = trainer.get_dataloaders()
        trainer.network.train()
        parts[name] = trainer.train_step(next(dl_train))
        if "distill" in name:
            assert trainer.loss.lambda_kd == trainer.lambda_kd == 1.0
            assert trainer.loss.distillation.temperature == trainer.kd_temperature
            assert trainer.loss.distillation.alpha == trainer.alpha
    distill, plain = parts.values()
    assert np.isfinite(distill["loss"]) and distill["kd"] > 0
    assert "kd" not in plain


@pytest.mark.slow
@pytest.mark.parametrize("network", NETWORKS)
def test_train_and_predict_a_case_with_missing_modalities(tiny_dataset, tmp_path, network):
    trainer = f"HolderMITrainer_{network}_distill_smoke"
    run_cli(train_command(trainer), train_env(tiny_dataset["env"]), timeout=900)
    results = tiny_dataset["root"] / "results"
    fold = model_folder_in(results, tiny_dataset["name"], trainer, PLANS, CONFIGURATION) / "fold_0"
    ckpt = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert ckpt["trainer_name"] == trainer and len(ckpt["logging"]["train_losses"]) == 3
    log = next(fold.glob("training_log_*.txt")).read_text()
    # logged to 4 decimals, so its sign is the in-process test's to check
    kd = re.findall(r"train loss parts \(this rank\): dice \S+, hd \S+, mi \S+, kd (\d+\.\d+)", log)
    assert len(kd) == 3, log
    assert "Full" in (fold / "validation" / SUBSET_TABLE_MD).read_text()

    src = tiny_dataset["root"] / "raw" / tiny_dataset["name"] / "imagesTs"
    missing = tmp_path / "missing"
    missing.mkdir()
    for c in (1, 3):  # T1c and FLAIR only: the T1 and T2 files are absent
        shutil.copy(src / f"tiny_008_000{c}.nii.gz", missing)
    model = ["-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0", "-tr", trainer, "-device", "cpu"]
    run_cli(["nnunet-holder", "predict", "-i", str(missing), "-o", str(tmp_path / "out"), *model],
            tiny_dataset["env"])
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(src / "tiny_008_0000.nii.gz")))
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "tiny_008.nii.gz")))
    assert seg.shape == image.shape and set(np.unique(seg).tolist()) <= {0, 1, 2, 3}
