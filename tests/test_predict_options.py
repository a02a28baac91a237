"""nnUNetv2_predict's options in `predict` and `evaluate-subsets`: folds, parts, re-runs, probabilities,
safe writes, batched mirroring and the per-case expectation, on a model trained by nnU-Net."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.utilities.utils import create_lists_from_splitted_dataset_folder

from nnunet_holder import cli
from nnunet_holder.evaluate.tables import read_case_csv
from nnunet_holder.file_names import MODALITY_REPORT, PER_CASE_TABLE, SUBSET_CASES_FOLDER, SUBSET_TABLE
from nnunet_holder.parts import Part
from nnunet_holder.predict.expected import ValidationTable
from nnunet_holder.predict.model import load_predictor
from nnunet_holder.predict.pipeline import ModelFiles, export_case, remove_partial_files
from nnunet_holder.predict.predictor import HolderPredictor
from tests.conftest import DATASET_ID
from tests.helpers_nnunet import experiment_variant, run_cli

MODEL = ["-d", str(DATASET_ID), "-c", "3d_fullres", "-tr", "HolderMITrainer_smoke", "-device", "cpu"]
# nnUNetv2_predict's sequential mode, ours too: no worker processes (each would import torch);
# the one_run fixture keeps the pools, so the runs compared with it check both modes agree
FAST = ["-npp", "0", "-nps", "0", "--disable_progress_bar"]
POOLS = ["-npp", "1", "-nps", "1", "--disable_progress_bar"]
CASES = ("tiny_008", "tiny_009", "tiny_010")


def _holder(args: list[str], env: dict) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "nnunet-holder"
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=600)


def _holder_here(args: list[str]) -> str | None:
    """`nnunet-holder ARGS` in this process (no torch import to wait for): its refusal, or None.

    Only for commands that need no nnU-Net paths (merge-parts, checks of the arguments alone):
    nnU-Net reads those from the environment once, when it is first imported.
    """
    try:
        cli.main(args)
    except SystemExit as e:
        assert e.code not in (0, None), e.code
        return str(e.code)
    return None


NNUNET_VARIABLES = (
    "nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer", "nnUNet_compile"
)


@pytest.fixture
def holder_run(monkeypatch, capsys):
    """`nnunet-holder ARGS` run to success in this process with nnU-Net's variables of `env`; its stdout.

    The same `main` as the console script, without a new process importing torch (seconds each on
    the 2-core CI machine); nnU-Net 2.8 reads its paths from the environment at each use.
    """

    def run(args: list[str], env: dict) -> str:
        with monkeypatch.context() as m:
            for key in NNUNET_VARIABLES:
                m.setenv(key, env[key])
            capsys.readouterr()
            assert cli.main(args) == 0
            return capsys.readouterr().out

    return run


@pytest.fixture(scope="module")
def partial_inputs(trained, tmp_path_factory) -> Path:
    """The three test cases, tiny_009 without its T1ce and T2 files."""
    src = trained["root"] / "raw" / trained["name"] / "imagesTs"
    inp = tmp_path_factory.mktemp("partial_in")
    for f in src.glob("*.nii.gz"):
        if not (f.name.startswith("tiny_009") and f.name[-11:-7] in ("0001", "0002")):
            shutil.copy(f, inp / f.name)
    return inp


@pytest.fixture(scope="module")
def one_run(trained, partial_inputs, tmp_path_factory) -> Path:
    """`predict` of the folder in one run, without -f (nnU-Net's auto-detected folds)."""
    out = tmp_path_factory.mktemp("one_run")
    proc = run_cli(["nnunet-holder", "predict", "-i", str(partial_inputs), "-o", str(out), *MODEL, *POOLS],
                   trained["env"])
    assert "part 0 of 1: 3 cases, 3 to predict" in proc.stdout
    return out


def _seg(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_reruns_refuse_then_continue_then_overwrite(trained, partial_inputs, one_run, holder_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(one_run, out)
    before = {c: (out / f"{c}.nii.gz").stat().st_mtime_ns for c in CASES}

    refused = _holder(["predict", "-i", str(partial_inputs), "-o", str(out), *MODEL, *FAST], trained["env"])
    assert refused.returncode != 0
    assert str(out) in refused.stderr and "--continue_prediction" in refused.stderr
    assert "predicting" not in refused.stderr  # refused before any work
    (out / "tiny_009.nii.gz").unlink()
    args = ["predict", "-i", str(partial_inputs), "-o", str(out), *MODEL, *FAST]
    cont = holder_run([*args, "--c"], trained["env"])
    assert "1 to predict, 2 already predicted (skipped)" in cont
    report = {r["case"]: r for r in json.loads((out / MODALITY_REPORT).read_text())}
    assert [report[c]["status"] for c in CASES] == ["skipped", "ok", "skipped"]
    # the skipped cases keep what the first run found out about them
    assert report["tiny_008"]["used"] == ["T1", "T1ce", "T2", "FLAIR"]
    assert all((out / f"{c}.nii.gz").stat().st_mtime_ns == before[c] for c in ("tiny_008", "tiny_010"))
    np.testing.assert_array_equal(_seg(out / "tiny_009.nii.gz"), _seg(one_run / "tiny_009.nii.gz"))

    holder_run([*args, "--overwrite"], trained["env"])
    assert all((out / f"{c}.nii.gz").stat().st_mtime_ns != before[c] for c in ("tiny_008", "tiny_010"))
    both = _holder_here(["predict", "-i", str(partial_inputs), "-o", str(out), *MODEL, "--overwrite", "--c"])
    assert "contradict" in both


def test_two_parts_merged_equal_one_run(trained, partial_inputs, one_run, holder_run, tmp_path):
    out = tmp_path / "parts"
    for k in (0, 1):
        holder_run(["predict", "-i", str(partial_inputs), "-o", str(out), *MODEL, *FAST,
                    "-num_parts", "2", "-part_id", str(k)], trained["env"])
    # nnU-Net's own split of the folder
    lists = create_lists_from_splitted_dataset_folder(str(partial_inputs), ".nii.gz")
    ids = [Path(files[0]).name[: -len("_0000.nii.gz")] for files in lists]
    part0 = [r["case"] for r in json.loads((out / "modality_report_part_0_of_2.json").read_text())]
    assert part0 == ids[0::2] and ids[0::2] == Part(0, 2).select(ids)

    assert "holds no parts" in _holder_here(["merge-parts", str(tmp_path / "nothing")])
    assert _holder_here(["merge-parts", str(out)]) is None
    for case in CASES:
        np.testing.assert_array_equal(_seg(out / f"{case}.nii.gz"), _seg(one_run / f"{case}.nii.gz"))
    merged = json.loads((out / MODALITY_REPORT).read_text())
    assert merged == json.loads((one_run / MODALITY_REPORT).read_text())

    (out / "modality_report_part_1_of_2.json").unlink()
    assert "part(s) [1] of 2" in _holder_here(["merge-parts", str(out)])


def test_evaluate_subsets_parts_merged_equal_one_run_and_continue(trained, holder_run, tmp_path):
    raw = trained["root"] / "raw" / trained["name"]
    common = ["evaluate-subsets", "-i", str(raw / "imagesTs"), "-l", str(raw / "labelsTs"), *MODEL, "-f", "0",
              "--disable_tta"]
    single, parts = tmp_path / "single", tmp_path / "parts"
    holder_run([*common, "-o", str(single)], trained["env"])
    for k in (0, 1):
        part = ["-num_parts", "2", "-part_id", str(k)]
        stdout = holder_run([*common, "-o", str(parts), *part], trained["env"])
        assert "merge-parts" in stdout
    assert not (parts / SUBSET_TABLE).exists()
    assert _holder_here(["merge-parts", str(parts)]) is None
    assert json.loads((parts / SUBSET_TABLE).read_text()) == json.loads(
        (single / SUBSET_TABLE).read_text()
    )
    assert read_case_csv(parts / PER_CASE_TABLE) == read_case_csv(
        single / PER_CASE_TABLE
    )

    refused = _holder([*common, "-o", str(single)], trained["env"])
    assert refused.returncode != 0 and "already holds an evaluation" in refused.stderr
    table = json.loads((single / SUBSET_TABLE).read_text())
    (single / SUBSET_CASES_FOLDER / "tiny_010.json").unlink()
    cont = holder_run([*common, "-o", str(single), "--continue_prediction"], trained["env"])
    assert "2 of 3 cases already evaluated (skipped)" in cont
    assert json.loads((single / SUBSET_TABLE).read_text()) == table


def test_save_probabilities_in_nnunet_format(trained, partial_inputs, holder_run, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for f in partial_inputs.glob("tiny_008_*.nii.gz"):
        shutil.copy(f, inp / f.name)
    ours, theirs = tmp_path / "ours", tmp_path / "nnunet"
    holder_run(["predict", "-i", str(inp), "-o", str(ours), *MODEL, *FAST, "-f", "0", "--save_probabilities"],
               trained["env"])
    run_cli(["nnUNetv2_predict", "-i", str(inp), "-o", str(theirs), *MODEL, "-f", "0", "--save_probabilities",
             "-npp", "0", "-nps", "0"], trained["env"])
    a, b = np.load(ours / "tiny_008.npz")["probabilities"], np.load(theirs / "tiny_008.npz")["probabilities"]
    assert a.shape == b.shape and a.dtype == b.dtype
    # nnU-Net accumulates the Gaussian-weighted tiles in float16, which quantises the logits where
    # the weights are tiny (at the volume's border); ours are float32, so they agree elsewhere
    close = np.abs(a - b) < 2e-3
    assert close.mean() > 0.97, close.mean()
    np.testing.assert_array_equal(_seg(ours / "tiny_008.nii.gz"), _seg(theirs / "tiny_008.nii.gz"))
    assert (ours / "tiny_008.pkl").is_file()
    assert not list(ours.glob(".partial_*"))


def test_refused_options_and_folds(trained, partial_inputs, tmp_path):
    base = ["predict", "-i", str(partial_inputs), "-o", str(tmp_path / "o"), *MODEL]
    # checked from the arguments alone, in this process
    for extra, message in (
        (["-prev_stage_predictions", str(tmp_path)], "cascades are not supported"),
        (["-step_size", "1.5"], "-step_size 1.5"),
        (["-part_id", "2", "-num_parts", "2"], "part ids run from 0"),
    ):
        refusal = _holder_here([*base, *extra])
        assert refusal is not None and message in refusal, (extra, refusal)
    evaluate = ["evaluate-subsets", "-i", str(partial_inputs), "-l", str(tmp_path), "-o", str(tmp_path / "o"),
                *MODEL]
    assert "contradict" in _holder_here([*evaluate, "--overwrite", "--continue_prediction"])
    # checked against the model folder, through the console script
    proc = _holder([*base, "-f", "3"], trained["env"])
    assert proc.returncode != 0 and "fold_3" in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()


def test_interrupted_export_leaves_no_half_written_segmentation(trained, monkeypatch, tmp_path):
    predictor = load_predictor(trained["fold"].parent, [0], device=torch.device("cpu"), allow_tqdm=False)
    model = ModelFiles.of(predictor)
    pre = predictor.configuration_manager.preprocessor_class(verbose=False)
    src = trained["root"] / "raw" / trained["name"] / "imagesTs"
    data, _, props = pre.run_case(
        [str(src / f"tiny_008_{c:04d}.nii.gz") for c in range(4)], None, predictor.plans_manager,
        predictor.configuration_manager, predictor.dataset_json,
    )
    logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).numpy()

    def cut_short(self, seg, path, properties):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(SimpleITKIO, "write_seg", cut_short)
        with pytest.raises(KeyboardInterrupt):
            export_case(logits, props, model, tmp_path, "tiny_008", False)
    assert not (tmp_path / "tiny_008.nii.gz").exists()
    assert (tmp_path / ".partial_tiny_008.nii.gz").exists()
    remove_partial_files(tmp_path, ["tiny_008"])
    assert not list(tmp_path.iterdir())
    export_case(logits, props, model, tmp_path, "tiny_008", False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_008.nii.gz"]


def test_report_gives_the_validation_dice_of_the_case_subset(trained, one_run):
    report = {r["case"]: r for r in json.loads((one_run / MODALITY_REPORT).read_text())}
    expected = report["tiny_009"]["expected_dice"]  # T1 + FLAIR
    assert expected["subset"] == "T1+Fl" and set(expected["with_one_more"]) == {"T1c", "T2"}
    rows = read_case_csv(trained["fold"] / "validation" / PER_CASE_TABLE)
    for subset, stats in (("T1+Fl", expected["dice"]), ("~T2", expected["with_one_more"]["T1c"])):
        et = [r["Dice_ET"] for r in rows if r["subset"] == subset]
        assert stats["ET"] == pytest.approx([np.mean(et), np.std(et)])
    assert report["tiny_008"]["expected_dice"]["with_one_more"] == {}  # nothing left to add
    assert "T1+Fl: WT" in report["tiny_009"]["expected"] and "with T1c:" in report["tiny_009"]["expected"]


def test_no_validation_table_means_no_expectation(tmp_path):
    table = ValidationTable.load(tmp_path, [0], {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"})
    fields = table.expectation(["T1"])
    assert fields["expected_dice"] is None
    assert "no validation subset table" in fields["expected"] and "fold_0" in fields["expected"]


@pytest.mark.parametrize("network", ["parallel", "feature_fusion"])
def test_batched_mirrors_equal_one_call_per_mirror(trained, network):
    predictor = load_predictor(trained["fold"].parent, [0], device=torch.device("cpu"), allow_tqdm=False)
    if network == "feature_fusion":
        attention = experiment_variant("HolderMITrainer_featureFusion_attention")
        net = attention.build_network_architecture(
            predictor.plans_manager, predictor.configuration_manager, 4, 3, enable_deep_supervision=False
        ).eval()
        ff = HolderPredictor(use_mirroring=True, device=torch.device("cpu"), allow_tqdm=False)
        ff.manual_initialization(net, predictor.plans_manager, predictor.configuration_manager, None,
                                 predictor.dataset_json, "HolderMITrainer_featureFusion", (0, 1, 2))
        predictor = ff
    torch.manual_seed(0)
    data = torch.randn(4, 24, 24, 24)
    data[1] = 0  # T1ce missing
    predictor.batch_limit = 24  # all 8 copies of the 3 available modalities in one call
    batched = predictor.predict_logits_from_preprocessed_data(data)
    predictor.batch_limit = 1
    single = predictor.predict_logits_from_preprocessed_data(data)
    predictor.batch_limit = 9  # 3 passes: groups of 3 copies, which do not divide the 8 mirrors
    grouped = predictor.predict_logits_from_preprocessed_data(data)
    assert (batched - single).abs().max().item() < 1e-5
    assert (grouped - single).abs().max().item() < 1e-5
    assert batched.abs().max().item() > 1e-3
