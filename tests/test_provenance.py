"""No table mixes models or settings: continuing and merging `evaluate-subsets` and `predict` results.

Two models trained by the real `nnUNetv2_train` on the tiny dataset (HolderMITrainer_smoke from
conftest, nnUNetTrainer_smoke here): an evaluation or prediction interrupted under one and
continued under the other, or parts run under different ones, are refused with the difference
named; continuing under the same setting still works and every record carries that setting. Also:
the refusals of `evaluate-subsets` come before torch is imported, and reference label maps with
values outside the dataset's labels fail their own case.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_holder import cli
from nnunet_holder.brats import NNUNET_LABELS
from nnunet_holder.evaluate import runner
from nnunet_holder.file_names import (
    MODALITY_REPORT,
    PREDICTION_RECORDS_FOLDER,
    SUBSET_CASES_FOLDER,
    SUBSET_TABLE,
    TIMING,
)
from nnunet_holder.predict import pipeline
from nnunet_holder.predict.inputs import CaseError
from nnunet_holder.predict.locate import model_folder_in
from tests.conftest import DATASET_ID, run_once, train_command, train_env
from tests.helpers_nnunet import CONFIGURATION, LABEL_CLASSES, PLANS, run_cli

A, B = "HolderMITrainer_smoke", "nnUNetTrainer_smoke"
# nnUNetv2_predict's sequential mode (ours too): no worker processes, each of which would import torch
MODEL = ["-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0",
         "--disable_progress_bar"]
NNUNET_VARIABLES = (
    "nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer", "nnUNet_compile"
)
CASES = ("tiny_008", "tiny_009", "tiny_010")


@pytest.fixture(scope="module")
def models(trained) -> dict:
    """The tiny dataset with two trained models: `trained`'s HolderMITrainer_smoke and nnUNetTrainer_smoke."""
    run_once(
        trained["root"],
        "trained_vanilla",
        lambda: run_cli(train_command(B), train_env(trained["env"]), timeout=900),
    )
    raw = trained["root"] / "raw" / trained["name"]
    return {**trained, "images": raw / "imagesTs", "labels": raw / "labelsTs"}


@pytest.fixture
def holder(models, monkeypatch, capsys):
    """`nnunet-holder ARGS` in this process with the models' nnU-Net paths: (status or refusal, stdout)."""

    def run(args: list[str]) -> tuple[int | str | None, str]:
        with monkeypatch.context() as m:
            for key in NNUNET_VARIABLES:
                m.setenv(key, models["env"][key])
            capsys.readouterr()
            try:
                status = cli.main(args)
            except SystemExit as e:
                status = e.code
            return status, capsys.readouterr().out

    return run


def _interrupt_after(monkeypatch, module, name: str, calls: int) -> None:
    """Make `module.name` raise KeyboardInterrupt (Ctrl-C) at its call number `calls + 1`."""
    real, count = getattr(module, name), [0]

    def cut(*args, **kwargs):
        count[0] += 1
        if count[0] > calls:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, cut)


def _evaluate(models, out: Path, trainer: str, *extra: str) -> list[str]:
    return ["evaluate-subsets", "-i", str(models["images"]), "-l", str(models["labels"]), "-o", str(out),
            *MODEL, "-tr", trainer, "--disable_tta", *extra]


def test_interrupted_evaluation_continued_with_another_model_or_setting_is_refused(
    models, holder, monkeypatch, tmp_path
):
    out = tmp_path / "eval"
    with monkeypatch.context() as m:  # Ctrl-C while the second case's result is being written
        _interrupt_after(m, runner, "atomic_write", 1)
        with pytest.raises(KeyboardInterrupt):
            holder(_evaluate(models, out, A))
    assert [p.stem for p in (out / SUBSET_CASES_FOLDER).glob("*.json")] == ["tiny_008"]

    status, _ = holder([*_evaluate(models, out, B), "--continue_prediction"])
    assert isinstance(status, str), status  # refused, not evaluated
    assert "case tiny_008" in status and f'trainer: "{A}" (recorded) vs "{B}" (this run)' in status
    assert "--overwrite" in status
    assert not (out / SUBSET_TABLE).exists()
    for extra, named in (
        (["-step_size", "0.75"], "step_size: 0.5 (recorded) vs 0.75 (this run)"),
        (["--postprocess-et", "5"], "postprocess_et: null (recorded) vs 5 (this run)"),
        (["--protocol", "raw"], 'protocol: "preprocessed" (recorded) vs "raw" (this run)'),
    ):
        status, _ = holder([*_evaluate(models, out, A, *extra), "--continue_prediction"])
        assert isinstance(status, str) and named in status, (extra, status)
    with_tta = [a for a in _evaluate(models, out, A) if a != "--disable_tta"]
    status, _ = holder([*with_tta, "--continue_prediction"])
    assert isinstance(status, str) and "mirroring: false (recorded) vs true (this run)" in status, status

    status, stdout = holder([*_evaluate(models, out, A), "--continue_prediction"])
    assert status == 0 and "1 of 3 cases already evaluated (skipped)" in stdout
    timing = json.loads((out / TIMING).read_text())
    assert [c["case"] for c in timing["cases"]] == list(CASES)
    setting = timing["setting"]
    assert setting["model"] == model_folder_in(Path(), models["name"], A, PLANS, CONFIGURATION).as_posix()
    assert [setting[k] for k in ("trainer", "plans", "configuration")] == [A, "nnUNetPlans", "3d_fullres"]
    assert (setting["folds"], setting["checkpoint"]) == ([0], "checkpoint_final.pth")
    assert (setting["mirroring"], setting["step_size"]) == (False, 0.5)
    assert (setting["protocol"], setting["postprocess_et"]) == ("preprocessed", None)
    assert setting["metrics"] == json.loads((out / SUBSET_TABLE).read_text())["metrics"]
    for case in CASES:
        assert json.loads((out / SUBSET_CASES_FOLDER / f"{case}.json").read_text())["setting"] == setting


def test_evaluation_parts_of_different_models_are_not_merged(models, holder, tmp_path):
    out = tmp_path / "parts"
    for k, trainer in ((0, A), (1, B)):
        status, _ = holder([*_evaluate(models, out, trainer), "-num_parts", "2", "-part_id", str(k)])
        assert status == 0
    status, _ = holder(["merge-parts", str(out)])
    assert isinstance(status, str), status
    assert "part 1 of the evaluation" in status and f'trainer: "{B}" (part 1) vs "{A}" (part 0)' in status
    assert not (out / SUBSET_TABLE).exists()

    # the old part 1 is replaced under part 0's setting: now they merge
    status, _ = holder([*_evaluate(models, out, A), "-num_parts", "2", "-part_id", "1", "--overwrite"])
    assert status == 0
    status, _ = holder(["merge-parts", str(out)])
    assert status == 0 and json.loads((out / TIMING).read_text())["setting"]["trainer"] == A


def _predict(models, inp: Path, out: Path, trainer: str, *extra: str) -> list[str]:
    return ["predict", "-i", str(inp), "-o", str(out), *MODEL, "-tr", trainer, *extra]


def test_interrupted_prediction_continued_with_another_model_is_refused(
    models, holder, monkeypatch, tmp_path
):
    out = tmp_path / "pred"
    with monkeypatch.context() as m:  # Ctrl-C during the second case's export
        _interrupt_after(m, pipeline, "export_case", 1)
        with pytest.raises(KeyboardInterrupt):
            holder(_predict(models, models["images"], out, A))
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["tiny_008.nii.gz"]

    status, _ = holder(_predict(models, models["images"], out, B, "--continue_prediction"))
    assert isinstance(status, str), status
    assert "tiny_008.nii.gz" in status and f'trainer: "{A}" (recorded) vs "{B}" (this run)' in status
    assert "--overwrite" in status
    status, _ = holder(_predict(models, models["images"], out, A, "--modalities", "T1,FLAIR", "--c"))
    assert isinstance(status, str) and 'modalities: null (recorded) vs ["T1", "FLAIR"] (this run)' in status

    status, stdout = holder(_predict(models, models["images"], out, A, "--continue_prediction"))
    assert status == 0 and "2 to predict, 1 already predicted (skipped)" in stdout
    report = json.loads((out / MODALITY_REPORT).read_text())
    assert [r["status"] for r in report] == ["skipped", "ok", "ok"]
    assert all(r["setting"]["trainer"] == A and r["setting"]["folds"] == [0] for r in report)

    # a segmentation without a record of what made it (e.g. written by nnUNetv2_predict) is not skipped
    (out / PREDICTION_RECORDS_FOLDER / "tiny_009.json").unlink()
    status, _ = holder(_predict(models, models["images"], out, A, "--continue_prediction"))
    assert isinstance(status, str) and "tiny_009.nii.gz" in status and "no record" in status, status


def test_prediction_parts_of_different_models_are_not_merged(models, holder, tmp_path):
    out = tmp_path / "parts"
    for k, trainer in ((0, A), (1, B)):
        part = ["-num_parts", "2", "-part_id", str(k)]
        status, _ = holder(_predict(models, models["images"], out, trainer, *part))
        assert status == 0
    status, _ = holder(["merge-parts", str(out)])
    assert isinstance(status, str), status
    assert "modality_report_part_1_of_2.json" in status and f'trainer: "{B}"' in status
    assert not (out / MODALITY_REPORT).exists()


TORCH_PROBE = """
import sys
from nnunet_holder import cli
try:
    cli.main(sys.argv[1:])
except SystemExit as e:
    print("refused:", e.code)
print("torch imported:", "torch" in sys.modules)
"""


@pytest.fixture(scope="module")
def evaluated(models, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaluated") / "eval"
    run_cli(["nnunet-holder", *_evaluate(models, out, A)], models["env"])
    return out


@pytest.mark.parametrize(
    "extra, refusal",
    [([], "already holds an evaluation"), (["-tr", B, "--continue_prediction"], f'"{B}" (this run)')],
    ids=["re-run", "continued with another model"],
)
def test_evaluate_refusals_come_before_torch_is_imported(models, evaluated, extra, refusal):
    args = [*_evaluate(models, evaluated, A), *extra]
    proc = subprocess.run([sys.executable, "-c", TORCH_PROBE, *args], env=models["env"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and refusal in proc.stdout, proc.stdout
    assert "torch imported: False" in proc.stdout, proc.stdout


def _relabel(path: Path, change) -> None:
    img = sitk.ReadImage(str(path))
    new = sitk.GetImageFromArray(change(sitk.GetArrayFromImage(img)))
    new.CopyInformation(img)
    sitk.WriteImage(new, str(path))


def test_labels_outside_the_dataset_fail_their_case_and_the_run(models, holder, tmp_path):
    labels = tmp_path / "labels"
    shutil.copytree(models["labels"], labels)
    # tiny_008 in raw BraTS 2018-2021 labels: enhancing tumour 4 where nnU-Net's regions have 3
    _relabel(labels / "tiny_008.nii.gz", lambda a: np.where(a == 3, 4, a).astype(a.dtype))
    _relabel(labels / "tiny_009.nii.gz", lambda a: np.where(a == 1, 9, a).astype(a.dtype))
    out = tmp_path / "eval"
    args = ["evaluate-subsets", "-i", str(models["images"]), "-l", str(labels), "-o", str(out), *MODEL,
            "-tr", A, "--disable_tta"]
    status, stdout = holder(args)
    assert status == 1, stdout
    failed = [line for line in stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(failed) == 2, stdout
    raw_brats, nine = failed
    assert f"case tiny_008 ({labels / 'tiny_008.nii.gz'})" in raw_brats and "label values [4]" in raw_brats
    assert "look like raw BraTS labels" in raw_brats and "nnunet-holder convert-brats" in raw_brats
    assert f"case tiny_009 ({labels / 'tiny_009.nii.gz'})" in nine and "label values [9]" in nine
    assert "raw BraTS" not in nine
    # the good case is evaluated
    timing = json.loads((out / TIMING).read_text())
    assert [c["case"] for c in timing["cases"]] == ["tiny_010"] and len(timing["failures"]) == 2


def test_reference_label_values_of_region_and_label_datasets(tmp_path):
    from nnunet_holder.evaluate.reference_labels import check_reference_labels

    file = tmp_path / "c.nii.gz"
    check_reference_labels("c", file, np.array([0, 1, 2, 3], np.uint8), NNUNET_LABELS)
    check_reference_labels("c", file, np.array([0.0, 3.0], np.float32), LABEL_CLASSES)
    for seg, labels, foreign, brats in (
        (np.array([0, 2, 4]), NNUNET_LABELS, "[4]", True),
        (np.array([0, 1, 2, 3, 4]), NNUNET_LABELS, "[4]", True),  # BraTS 2024: 4 = resection cavity
        (np.array([0.0, 1.5]), NNUNET_LABELS, "[1.5]", False),
        (np.array([0, 4]), LABEL_CLASSES, "[4]", False),  # not convert-brats' regions: no BraTS advice
    ):
        with pytest.raises(CaseError) as error:
            check_reference_labels("c", file, seg, labels)
        assert error.value.file == file and f"label values {foreign}" in str(error.value), str(error.value)
        assert ("raw BraTS" in str(error.value)) == brats, str(error.value)
