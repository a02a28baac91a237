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
from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_holder.evaluate.metrics import regions_from_dataset_labels
from nnunet_holder.evaluate.one_pass import subset_logits
from nnunet_holder.file_names import (
    DICE_HEATMAP,
    MODALITY_REPORT,
    MODALITY_REPORT_CSV,
    PER_CASE_TABLE,
    SEGMENTATIONS_FOLDER,
    SUBSET_TABLE,
    TIMING,
)
from nnunet_holder.predict.expected import ValidationTable
from nnunet_holder.predict.inputs import read_case, scan_folder
from nnunet_holder.predict.model import load_predictor, parse_modalities
from nnunet_holder.predict.partial import plan_folder, predict_folder, prediction_setting
from nnunet_holder.predict.predictor import HolderPredictor
from nnunet_holder.provenance import model_setting
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
    # nnU-Net's sequential mode (ours too): no worker processes, each of which would import torch
    "-npp",
    "0",
    "-nps",
    "0",
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
    ours_dir = tmp_path / "ours"
    run_cli(["nnunet-holder", "predict", "-i", str(inp), "-o", str(ours_dir), *MODEL_ARGS], trained["env"])
    for case in ("tiny_008", "tiny_009"):
        seg = sitk.ReadImage(str(tmp_path / "out" / f"{case}.nii.gz"))
        ref = sitk.ReadImage(str(inp / f"{case}_0000.nii.gz"))
        assert seg.GetSize() == ref.GetSize() and seg.GetSpacing() == ref.GetSpacing()
        # nnU-Net's own predictor (availability from the tile's non-zero channels) and ours (from
        # the whole case) agree where every tile holds the case's present channels, as here
        ours = sitk.GetArrayFromImage(sitk.ReadImage(str(ours_dir / f"{case}.nii.gz")))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(seg), ours)


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
    report = {r["case"]: r for r in json.loads((out / MODALITY_REPORT).read_text())}
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
    with open(out / MODALITY_REPORT_CSV, newline="") as f:
        assert len(list(csv.DictReader(f))) == 5


def _rewrite(path: Path, change) -> None:
    """Replace a channel file's voxels by `change(voxels)`, keeping its geometry (SimpleITK writes NaN)."""
    img = sitk.ReadImage(str(path))
    new = sitk.GetImageFromArray(change(sitk.GetArrayFromImage(img).astype(np.float32)))
    new.CopyInformation(img)
    sitk.WriteImage(new, str(path))


def _read_seg(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _with_nan(voxels: np.ndarray) -> np.ndarray:
    voxels[12, 12, 10:15] = np.nan
    return voxels


def test_nan_and_flat_files_are_named_in_the_report_and_treated_as_missing(trained, tmp_path):
    """An all-NaN file and a constant one are predicted as missing files are; NaN voxels are set to 0."""
    src, inp, out = _images_ts(trained), tmp_path / "in", tmp_path / "out"
    _copy_case(src, "tiny_008", inp, new_name="all_nan")
    _rewrite(inp / "all_nan_0001.nii.gz", lambda v: np.full_like(v, np.nan))
    _copy_case(src, "tiny_008", inp, channels=(0, 2, 3), new_name="no_t1ce")
    _copy_case(src, "tiny_009", inp, new_name="some_nan")
    _rewrite(inp / "some_nan_0002.nii.gz", _with_nan)
    _copy_case(src, "tiny_009", inp, new_name="nan_as_zero")
    _rewrite(inp / "nan_as_zero_0002.nii.gz", lambda v: np.nan_to_num(_with_nan(v), nan=0.0))
    _copy_case(src, "tiny_010", inp, new_name="flat")
    _rewrite(inp / "flat_0001.nii.gz", lambda v: np.full_like(v, 100))  # the probe's T1c: 100 everywhere
    _copy_case(src, "tiny_010", inp, channels=(0, 2, 3), new_name="flat_absent")
    run_cli(["nnunet-holder", "predict", "-i", str(inp), "-o", str(out), *MODEL_ARGS], trained["env"])

    report = {r["case"]: r for r in json.loads((out / MODALITY_REPORT).read_text())}
    voxels = int(np.prod(sitk.ReadImage(str(inp / "all_nan_0000.nii.gz")).GetSize()))
    assert report["all_nan"]["unusable"] == ["T1ce"] and report["all_nan"]["zero_filled"] == []
    (nan_note,) = report["all_nan"]["notes"]
    assert nan_note == f"all_nan_0001.nii.gz: all {voxels} voxels are NaN; treated as missing"
    assert report["some_nan"]["used"] == ["T1", "T1ce", "T2", "FLAIR"]
    assert report["some_nan"]["notes"] == ["some_nan_0002.nii.gz: 5 NaN voxels set to 0"]
    assert report["flat"]["unusable"] == ["T1ce"] and report["flat"]["used"] == ["T1", "T2", "FLAIR"]
    (flat_note,) = report["flat"]["notes"]
    assert flat_note == "flat_0001.nii.gz: constant (100) inside the brain, no contrast; treated as missing"
    assert report["no_t1ce"]["notes"] == [] and report["no_t1ce"]["unusable"] == []
    for case, same_as in (("all_nan", "no_t1ce"), ("flat", "flat_absent"), ("some_nan", "nan_as_zero")):
        assert report[case]["status"] == "ok"
        seg, expected = (_read_seg(out / f"{c}.nii.gz") for c in (case, same_as))
        np.testing.assert_array_equal(seg, expected, err_msg=f"{case} vs {same_as}")
    with open(out / MODALITY_REPORT_CSV, newline="") as f:
        rows = {r["case"]: r for r in csv.DictReader(f)}
    assert rows["flat"]["notes"] == flat_note


def test_forced_modalities_and_what_the_network_runs(predictor, trained, tmp_path):
    src, inp = _images_ts(trained), tmp_path / "in"
    _copy_case(src, "tiny_008", inp)
    forced = parse_modalities("t1c", predictor.dataset_json["channel_names"])
    assert forced == (1,)
    out = tmp_path / "out"
    model = model_setting(trained["fold"].parent, [0], "checkpoint_final.pth", True, 0.5)
    setting = prediction_setting(model, forced, predictor.dataset_json["channel_names"])
    plan = plan_folder(inp, out, ".nii.gz", 4, setting=setting)
    table = ValidationTable.load(trained["fold"].parent, [0], predictor.dataset_json["channel_names"])
    reports = predict_folder(
        predictor, plan, out, table, forced, num_processes_preprocessing=1, num_processes_export=1,
        progress=False,
    )
    assert reports[0].used == ["T1ce"] and reports[0].ignored == ["T1", "T2", "FLAIR"]
    assert predictor.last_available == (1,)
    with pytest.raises(SystemExit, match="unknown modality 'PD'"):
        parse_modalities("PD", predictor.dataset_json["channel_names"])


def _direct(predictor: HolderPredictor, data: torch.Tensor, subset: tuple[int, ...]) -> torch.Tensor:
    """The ensemble's prediction with only `subset` available (the other channels zeroed)."""
    masked = data.clone()
    masked[[i for i in range(4) if i not in subset]] = 0
    logits = predictor.predict_logits_from_preprocessed_data(masked)
    assert predictor.last_available == subset
    return logits


def test_one_pass_fusion_equals_predicting_each_subset(predictor, trained):
    data = _preprocessed(predictor, _images_ts(trained), "tiny_008")
    fused = subset_logits(predictor, data)
    worst = max((fused[s] - _direct(predictor, data, s)).abs().max().item() for s in all_subsets(4))
    assert worst < 1e-4, worst


@pytest.mark.parametrize("num_folds", [1, 2])
def test_one_pass_with_learned_fusion_weights_equals_predicting_each_subset(predictor, trained, num_folds):
    """The same exactness for a per-(modality, class) weighted fusion (HolderMITrainer_learnedFusion),
    also for an ensemble of folds with different weights: each fold is fused with its own weights."""
    data = _preprocessed(predictor, _images_ts(trained), "tiny_008")
    net = predictor.parallel_network()
    heads = predictor.label_manager.num_segmentation_heads
    g = torch.Generator().manual_seed(5)
    betas = [torch.randn(4, heads, generator=g) * 2 for _ in range(num_folds)]
    saved = predictor.list_of_parameters
    net.fusion_logits = torch.nn.Parameter(betas[0].clone())
    predictor.list_of_parameters = [{**saved[0], "fusion_logits": beta} for beta in betas]
    try:
        fused = subset_logits(predictor, data)
        worst = max((fused[s] - _direct(predictor, data, s)).abs().max().item() for s in all_subsets(4))
        assert worst < 1e-4, worst
        both = (0, 3)
        net.fusion_logits = None
        predictor.list_of_parameters = [saved[0]]
        plain = subset_logits(predictor, data)
        assert (fused[both] - plain[both]).abs().max().item() > 1e-3  # not the plain mean
    finally:
        net.fusion_logits = None
        predictor.list_of_parameters = saved


@pytest.mark.parametrize("trainer", ["HolderMITrainer_featureFusion", "HolderMITrainer_inputFusion"])
def test_one_pass_of_a_single_decoder_network_equals_predicting_each_subset(predictor, trained, trainer):
    """The feature- and input-fusion networks in the real predictor (their plans, mirroring on):
    the 15 subsets of a tile decoded in one batch equal 15 separate predictions."""
    import nnunet_holder.trainers as trainers

    net = getattr(trainers, trainer).build_network_architecture(
        predictor.plans_manager, predictor.configuration_manager, 4, 3, enable_deep_supervision=False
    ).eval()
    torch.manual_seed(3)
    with torch.no_grad():  # learned attention and the norms away from their start
        for name, p in net.named_parameters():
            if "fusions" in name or "norm" in name:
                p.add_(torch.randn_like(p) * 0.3)
    one_pass = HolderPredictor(use_mirroring=True, device=torch.device("cpu"), allow_tqdm=False)
    one_pass.manual_initialization(
        net, predictor.plans_manager, predictor.configuration_manager, None, predictor.dataset_json,
        trainer, (0, 1, 2),
    )
    data = _preprocessed(predictor, _images_ts(trained), "tiny_008")
    fused = subset_logits(one_pass, data)
    worst = max((fused[s] - _direct(one_pass, data, s)).abs().max().item() for s in all_subsets(4))
    assert worst < 1e-4, worst
    singles = [(fused[(i,)] - fused[(0, 1, 2, 3)]).abs().max().item() for i in range(4)]
    assert min(singles) > 1e-3  # the subsets really differ


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
            "--save-segmentations",
        ],
        trained["env"],
    )
    assert "### Protocol: preprocessed" in proc.stdout
    table = json.loads((out / SUBSET_TABLE).read_text())
    assert table["order"][0] == "Fl" and table["order"][-1] == "Full" and len(table["order"]) == 15
    rows = (out / PER_CASE_TABLE).read_text().strip().splitlines()
    assert len(rows) == 1 + 3 * 15
    assert (out / DICE_HEATMAP).stat().st_size > 1000
    assert len(list(out.glob("overlay_*.png"))) == 1
    timing = json.loads((out / TIMING).read_text())
    assert timing["protocol"] == "preprocessed" and len(timing["cases"]) == 3

    # The full-set Dice of the table against nnU-Net's own evaluation of the saved segmentations.
    # Every reference case has all three regions, so nnU-Net's Dice (NaN only when prediction and
    # reference are both empty, where ours is 1) is defined and the same formula as ours. Our
    # --postprocess-et 5 empties a predicted ET below 5 voxels (Dice 0 against a non-empty
    # reference); WT and TC keep those voxels, so only ET needs that rule applied to nnU-Net's.
    dataset_json = json.loads((raw / "dataset.json").read_text())
    label_manager = PlansManager(str(trained["fold"].parent / "plans.json")).get_label_manager(dataset_json)
    regions, names = regions_from_dataset_labels(dataset_json["labels"])
    assert [tuple(r) for r in regions] == [tuple(r) for r in label_manager.foreground_regions]
    nnunet = compute_metrics_on_folder(
        str(raw / "labelsTs"),
        str(out / SEGMENTATIONS_FOLDER / "Full"),
        None,
        SimpleITKIO(),
        dataset_json["file_ending"],
        label_manager.foreground_regions,
        num_processes=1,
    )
    assert len(nnunet["metric_per_case"]) == 3
    for region, name in zip(label_manager.foreground_regions, names, strict=True):
        per_case = [case["metrics"][region] for case in nnunet["metric_per_case"]]
        assert all(m["n_ref"] > 0 for m in per_case), (name, per_case)
        if name == "ET":
            expected = [m["Dice"] if m["n_pred"] >= 5 else 0.0 for m in per_case]
        else:
            expected = [m["Dice"] for m in per_case]
        ours = table["Full"][f"Dice_{name}"]["mean"]
        assert ours == pytest.approx(float(np.mean(expected)), abs=1e-6), (name, ours, expected)
        if name != "ET":
            assert ours == pytest.approx(nnunet["mean"][region]["Dice"], abs=1e-6), name
