"""Partial-modality prediction and the one-pass all-subset evaluation, on a model trained by nnU-Net."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_holder.evaluate.one_pass import subset_logits
from nnunet_holder.predict.inputs import read_case, scan_folder
from nnunet_holder.predict.model import load_predictor, parse_modalities
from nnunet_holder.predict.partial import predict_folder
from nnunet_holder.predict.predictor import HolderPredictor
from nnunet_holder.subsets import all_subsets
from tests.conftest import DATASET_ID
from tests.helpers_nnunet import run_cli

MODEL_ARGS = [
    "-d",
    str(DATASET_ID),
    "-c",
    "3d_fullres",
    "-f",
    "0",
    "-tr",
    "HolderMITrainer_smoke",
    "-device",
    "cpu",
]


def _images_ts(trained) -> Path:
    return trained["root"] / "raw" / trained["name"] / "imagesTs"


def _copy_case(src: Path, case: str, dst: Path, channels=(0, 1, 2, 3), new_name: str | None = None) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for c in channels:
        shutil.copy(src / f"{case}_{c:04d}.nii.gz", dst / f"{new_name or case}_{c:04d}.nii.gz")


def _zero_fill(path: Path) -> None:
    img = sitk.ReadImage(str(path))
    zero = sitk.GetImageFromArray(np.zeros_like(sitk.GetArrayFromImage(img)))
    zero.CopyInformation(img)
    sitk.WriteImage(zero, str(path))


@pytest.fixture(scope="module")
def predictor(trained) -> HolderPredictor:
    import os

    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer"):
        os.environ[key] = trained["env"][key]
    return load_predictor(trained["fold"].parent, [0], device=torch.device("cpu"), allow_tqdm=False)


def _preprocessed(predictor: HolderPredictor, folder: Path, case: str) -> torch.Tensor:
    files = next(c for c in scan_folder(folder, ".nii.gz", 4) if c.case == case)
    images = read_case(files, predictor.plans_manager.image_reader_writer_class(), 4)
    pre = predictor.configuration_manager.preprocessor_class(verbose=False)
    data, _, _ = pre.run_case_npy(
        images.images,
        None,
        dict(images.properties),
        predictor.plans_manager,
        predictor.configuration_manager,
        predictor.dataset_json,
    )
    return torch.from_numpy(data)


def test_plain_nnunetv2_predict_on_complete_and_zero_filled_cases(trained, tmp_path):
    src, inp = _images_ts(trained), tmp_path / "in"
    _copy_case(src, "tiny_008", inp)
    _copy_case(src, "tiny_009", inp)
    _zero_fill(inp / "tiny_009_0001.nii.gz")
    run_cli(["nnUNetv2_predict", "-i", str(inp), "-o", str(tmp_path / "out"), *MODEL_ARGS], trained["env"])
    for case in ("tiny_008", "tiny_009"):
        seg = sitk.ReadImage(str(tmp_path / "out" / f"{case}.nii.gz"))
        ref = sitk.ReadImage(str(inp / f"{case}_0000.nii.gz"))
        assert seg.GetSize() == ref.GetSize() and seg.GetSpacing() == ref.GetSpacing()


def test_predict_cli_on_a_mixed_folder(trained, tmp_path):
    src, inp, out = _images_ts(trained), tmp_path / "in", tmp_path / "out"
    _copy_case(src, "tiny_008", inp)  # complete
    _copy_case(src, "tiny_009", inp, channels=(0, 3))  # T1ce and T2 files missing
    _copy_case(src, "tiny_010", inp)
    _zero_fill(inp / "tiny_010_0001.nii.gz")  # T1ce acquired as an all-zero volume
    _copy_case(src, "tiny_008", inp, new_name="broken")
    (inp / "broken_0002.nii.gz").write_bytes(b"not a nifti file")
    _copy_case(src, "tiny_008", inp, new_name="mismatch")
    img = sitk.ReadImage(str(inp / "mismatch_0003.nii.gz"))
    img.SetSpacing((3.0, 2.0, 2.0))
    sitk.WriteImage(img, str(inp / "mismatch_0003.nii.gz"))

    exe = Path(sys.executable).parent / "nnunet-holder"
    proc = subprocess.run(
        [str(exe), "predict", "-i", str(inp), "-o", str(out), *MODEL_ARGS],
        env=trained["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # failures are reported in the exit status
    for case in ("tiny_008", "tiny_009", "tiny_010"):
        assert (out / f"{case}.nii.gz").is_file(), proc.stdout + proc.stderr
    assert not (out / "broken.nii.gz").exists() and not (out / "mismatch.nii.gz").exists()
    report = {r["case"]: r for r in json.loads((out / "modality_report.json").read_text())}
    assert report["tiny_008"]["used"] == ["T1", "T1ce", "T2", "FLAIR"]
    assert report["tiny_009"]["used"] == ["T1", "FLAIR"] and report["tiny_009"]["missing"] == ["T1ce", "T2"]
    assert report["tiny_010"]["zero_filled"] == ["T1ce"] and report["tiny_010"]["used"] == [
        "T1",
        "T2",
        "FLAIR",
    ]
    assert report["broken"]["status"] == "failed" and "broken_0002.nii.gz" in report["broken"]["error"]
    assert "spacing" in report["mismatch"]["error"] and "mismatch_0003.nii.gz" in report["mismatch"]["error"]
    assert "broken_0002.nii.gz" in proc.stdout
    with open(out / "modality_report.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 5


def test_forced_modalities_and_what_the_network_runs(predictor, trained, tmp_path):
    src, inp = _images_ts(trained), tmp_path / "in"
    _copy_case(src, "tiny_008", inp)
    forced = parse_modalities("t1c", predictor.dataset_json["channel_names"])
    assert forced == (1,)
    reports = predict_folder(predictor, inp, tmp_path / "out", forced, num_processes=1)
    assert reports[0].used == ["T1ce"] and reports[0].ignored == ["T1", "T2", "FLAIR"]
    assert predictor.last_available == (1,)
    with pytest.raises(SystemExit, match="unknown modality 'PD'"):
        parse_modalities("PD", predictor.dataset_json["channel_names"])


def test_one_pass_fusion_equals_predicting_each_subset(predictor, trained):
    data = _preprocessed(predictor, _images_ts(trained), "tiny_008")
    per_modality = predictor.predict_per_modality_logits(data)
    worst = 0.0
    for subset in all_subsets(4):
        masked = data.clone()
        masked[[i for i in range(4) if i not in subset]] = 0
        direct = predictor.predict_logits_from_preprocessed_data(masked)
        assert predictor.last_available == subset
        worst = max(worst, (per_modality[list(subset)].mean(0) - direct).abs().max().item())
    assert worst < 1e-4, worst


def test_one_pass_with_learned_fusion_weights_equals_predicting_each_subset(predictor, trained):
    """The same exactness for a per-(modality, class) weighted fusion (HolderMITrainer_learnedFusion)."""
    data = _preprocessed(predictor, _images_ts(trained), "tiny_008")
    net = predictor.parallel_network()
    heads = predictor.label_manager.num_segmentation_heads
    beta = torch.randn(4, heads, generator=torch.Generator().manual_seed(5)) * 2
    saved = predictor.list_of_parameters
    net.fusion_logits = torch.nn.Parameter(beta.clone())
    predictor.list_of_parameters = [{**params, "fusion_logits": beta} for params in saved]
    try:
        fused = subset_logits(predictor, data)
        worst = 0.0
        for subset in all_subsets(4):
            masked = data.clone()
            masked[[i for i in range(4) if i not in subset]] = 0
            direct = predictor.predict_logits_from_preprocessed_data(masked)
            worst = max(worst, (fused[subset] - direct).abs().max().item())
        assert worst < 1e-4, worst
        per_modality = predictor.predict_per_modality_logits(data)
        both = (0, 3)
        assert (fused[both] - per_modality[list(both)].mean(0)).abs().max().item() > 1e-3  # not the mean
    finally:
        net.fusion_logits = None
        predictor.list_of_parameters = saved


def test_vanilla_network_gets_one_zero_filled_pass_per_subset(predictor, trained):
    vanilla = nnUNetTrainer.build_network_architecture(
        predictor.plans_manager, predictor.configuration_manager, 4, 3, enable_deep_supervision=False
    )
    baseline = HolderPredictor(use_mirroring=False, device=torch.device("cpu"), allow_tqdm=False)
    baseline.manual_initialization(
        vanilla,
        predictor.plans_manager,
        predictor.configuration_manager,
        None,
        predictor.dataset_json,
        "nnUNetTrainer",
        None,
    )
    inputs = []
    vanilla.register_forward_pre_hook(
        lambda mod, args: inputs.append(args[0].flatten(2).abs().sum(-1)[0] > 0)
    )
    data = _preprocessed(predictor, _images_ts(trained), "tiny_008")
    logits = subset_logits(baseline, data)
    assert list(logits) == all_subsets(4)
    tiles = len(inputs) // 15
    for i, subset in enumerate(all_subsets(4)):
        present = inputs[i * tiles]
        assert tuple(int(c) for c in torch.nonzero(present).flatten()) == subset


def test_evaluate_subsets_cli(trained, tmp_path):
    raw = trained["root"] / "raw" / trained["name"]
    out = tmp_path / "eval"
    proc = run_cli(
        [
            "nnunet-holder",
            "evaluate-subsets",
            "-i",
            str(raw / "imagesTs"),
            "-l",
            str(raw / "labelsTs"),
            "-o",
            str(out),
            *MODEL_ARGS,
            "--postprocess-et",
            "5",
        ],
        trained["env"],
    )
    assert "| Region" in proc.stdout or "WT" in proc.stdout
    table = json.loads((out / "subset_table.json").read_text())
    assert table["order"][0] == "Fl" and table["order"][-1] == "Full" and len(table["order"]) == 15
    rows = (out / "subset_metrics_per_case.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 3 * 15
    assert (out / "dice_heatmap.png").stat().st_size > 1000
    assert len(list(out.glob("overlay_*.png"))) == 1
    timing = json.loads((out / "timing.json").read_text())
    assert len(timing) == 3
