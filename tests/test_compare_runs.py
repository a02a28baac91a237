"""`plan-small` and `compare` end to end: real planning, real `nnUNetv2_train`, resume, aggregation.

Two trainers × two seeds on the tiny dataset's `3d_small` configuration; the report's per-seed
values, means, stds and paired differences are recomputed from each run's per-case CSV; then one
run is deleted and the re-run command trains only that one, and its seed gives the same numbers.
Marked slow (about 5 minutes on 2 cores: five real trainings): `make test-all` runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nnunet_holder.evaluate.tables import read_case_csv
from nnunet_holder.file_names import (
    COMPARISON_CSV,
    COMPARISON_HEATMAP,
    COMPARISON_JSON,
    COMPARISON_MD,
    PER_CASE_TABLE,
)
from nnunet_holder.predict.locate import model_folder_in
from tests.helpers_nnunet import PLANS, run_cli

pytestmark = pytest.mark.slow

TRAINERS = ("nnUNetTrainer_smoke", "nnUNetTrainerModalityDropout_smoke")
SEEDS = (0, 1)


def _compare(dataset: dict, out: Path) -> str:
    env = {**dataset["env"], "nnUNet_n_proc_DA": "0"}
    args = ["nnunet-holder", "compare", "-d", str(dataset["id"]), "-c", "3d_small", "-tr", *TRAINERS]
    # two trainings side by side, each with half of the cores (nnUNet_torch_threads)
    args += ["--seeds", *map(str, SEEDS), "-o", str(out), "--jobs", "2"]
    # the ceiling of one subset: a dedicated vanilla model trained on the T1c channel alone
    args += ["--dedicated", "T1c", "--dedicated-trainer", TRAINERS[0]]
    return run_cli(args, env, timeout=900).stdout


def _direct(out: Path, trainer: str, seed: int, subsets: list[str] | None) -> float:
    """Mean over the test cases and regions (and the given subsets) from the run's per-case CSV."""
    rows = read_case_csv(out / "evaluation" / trainer / f"seed_{seed}" / PER_CASE_TABLE)
    keys = [k for k in rows[0] if k.startswith("Dice_")]
    per_subset = {}
    for row in rows:
        per_subset.setdefault(row["subset"], []).append(np.mean([float(row[k]) for k in keys]))
    chosen = subsets if subsets is not None else [s for s in per_subset if s != "Full"]
    return float(np.mean([np.mean(per_subset[s]) for s in chosen]))


def _fold(out: Path, seed: int, dataset_name: str, trainer: str) -> Path:
    """fold_0 of `trainer` in seed `seed`'s results folder of the comparison `out`."""
    results = out / "models" / f"seed_{seed}"
    return model_folder_in(results, dataset_name, trainer, PLANS, "3d_small") / "fold_0"


@pytest.fixture(scope="module")
def compared(tiny_dataset, tmp_path_factory):
    proc = run_cli(["nnunet-holder", "plan-small", "-d", str(tiny_dataset["id"])], tiny_dataset["env"])
    assert "added 3d_small" in proc.stdout or "already there" in proc.stdout
    out = tmp_path_factory.mktemp("compare")
    return tiny_dataset, out, _compare(tiny_dataset, out)


def test_small_configuration_inherits_and_halves_the_features(compared):
    dataset, out, _ = compared
    plans_file = Path(dataset["env"]["nnUNet_preprocessed"]) / dataset["name"] / "nnUNetPlans.json"
    configs = json.loads(plans_file.read_text())["configurations"]
    assert configs["3d_small"]["inherits_from"] == "3d_fullres"
    full = configs["3d_fullres"]["architecture"]["arch_kwargs"]["features_per_stage"]
    small = configs["3d_small"]["architecture"]["arch_kwargs"]["features_per_stage"]
    assert small == [round(f / 2) for f in full]
    # trained on 3d_fullres's preprocessed data: no second data folder
    assert not list((plans_file.parent).glob("*3d_small*"))
    fold = _fold(out, 0, dataset["name"], TRAINERS[0])
    weights = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)[
        "network_weights"
    ]
    first_conv = next(v for k, v in weights.items() if k.endswith("encoder.stages.0.0.convs.0.conv.weight"))
    assert first_conv.shape[0] == small[0]


def test_plan_small_refuses_to_replace_a_different_entry(compared, tmp_path):
    dataset, _, _ = compared
    env = dataset["env"]
    proc = run_cli(["nnunet-holder", "plan-small", "-d", str(dataset["id"])], env)
    assert "already there" in proc.stdout
    refused = subprocess.run(
        [
            str(Path(sys.executable).parent / "nnunet-holder"),
            "plan-small",
            "-d",
            str(dataset["id"]),
            "--width",
            "0.25",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "pass --overwrite" in refused.stderr


def test_report_equals_a_direct_computation_from_the_per_case_tables(compared):
    _, out, stdout = compared
    data = json.loads((out / COMPARISON_JSON).read_text())
    assert data["seeds"] == list(SEEDS) and data["trainers"] == list(TRAINERS)
    for group, subsets in (("missing", None), ("full", ["Full"])):
        per_model = {}
        for trainer in TRAINERS:
            direct = [_direct(out, trainer, s, subsets) for s in SEEDS]
            entry = data["models"][trainer]["groups"][group]["mean"]
            assert [entry["per_seed"][str(s)] for s in SEEDS] == pytest.approx(direct, abs=1e-9)
            assert entry["mean"] == pytest.approx(np.mean(direct), abs=1e-9)
            assert entry["std"] == pytest.approx(np.std(direct, ddof=1), abs=1e-9)
            per_model[trainer] = direct
        diff = np.subtract(per_model[TRAINERS[1]], per_model[TRAINERS[0]])
        md = (out / COMPARISON_MD).read_text()
        assert f"{100 * diff.mean():+.1f} ({int((diff > 0).sum())}/2)" in md
    assert "## Verdict" in md and "seed" in data["verdict"][0]
    assert (out / COMPARISON_HEATMAP).stat().st_size > 0 and (out / COMPARISON_CSV).is_file()


def test_the_ceiling_equals_the_dedicated_models_own_evaluations(compared):
    dataset, out, stdout = compared
    data = json.loads((out / COMPARISON_JSON).read_text())
    ceiling = data["ceiling"]
    derived = ceiling["datasets"]["T1c"]
    raw = Path(dataset["env"]["nnUNet_raw"]) / derived
    assert list(json.loads((raw / "dataset.json").read_text())["channel_names"]) == ["0"]
    assert ceiling["trainings"] == len(SEEDS) and ceiling["train_seconds"] > 0
    for seed in SEEDS:
        dedicated = _direct(out, "dedicated_T1c", seed, ["Full"])  # the derived dataset's full set is T1c
        assert ceiling["subsets"]["T1c"]["mean"][str(seed)] == pytest.approx(dedicated, abs=1e-9)
        vanilla_full = _direct(out, TRAINERS[0], seed, ["Full"])
        assert ceiling["subsets"]["Full"]["mean"][str(seed)] == pytest.approx(vanilla_full, abs=1e-9)
    top = np.mean([_direct(out, "dedicated_T1c", s, ["Full"]) for s in SEEDS])
    for trainer in TRAINERS:
        value = np.mean([_direct(out, trainer, s, ["T1c"]) for s in SEEDS])
        assert ceiling["gaps"][trainer]["mean"]["gap"] == pytest.approx(top - value, abs=1e-9)
    md = (out / COMPARISON_MD).read_text()
    assert "## The ceiling" in md and "| T1c |" in md and "Cost: the ceiling took 2 dedicated trainings" in md


def test_an_interrupted_comparison_continues_and_repeats_its_seed(compared):
    dataset, out, _ = compared
    before = json.loads((out / COMPARISON_JSON).read_text())
    run_dir = _fold(out, 1, dataset["name"], TRAINERS[1])
    kept = _fold(out, 0, dataset["name"], TRAINERS[0])
    kept_mtime = (kept / "checkpoint_final.pth").stat().st_mtime
    (run_dir / "checkpoint_final.pth").unlink()
    for f in (out / "evaluation" / TRAINERS[1] / "seed_1").iterdir():
        if f.is_file():
            f.unlink()
    stdout = _compare(dataset, out)
    assert stdout.count(": training") == 1 and f"{TRAINERS[1]} seed 1: training" in stdout
    log = (out / "logs" / f"train_{TRAINERS[1]}_seed_1.log").read_text()
    assert f"nnUNet_torch_threads={max(1, len(os.sched_getaffinity(0)) // 2)}" in log
    assert (kept / "checkpoint_final.pth").stat().st_mtime == kept_mtime
    after = json.loads((out / COMPARISON_JSON).read_text())
    # nnUNet_seed with augmentation in the main process: the re-trained run repeats its numbers
    for group in ("missing", "full"):
        b = before["models"][TRAINERS[1]]["groups"][group]["mean"]["per_seed"]
        a = after["models"][TRAINERS[1]]["groups"][group]["mean"]["per_seed"]
        assert a == pytest.approx(b, abs=1e-6)


@pytest.mark.parametrize("change", [["-c", "3d_fullres"], ["--mirroring"]])
def test_a_comparison_with_other_settings_in_the_same_folder_is_refused(compared, change):
    dataset, out, _ = compared
    exe = Path(sys.executable).parent / "nnunet-holder"
    args = ["compare", "-d", str(dataset["id"]), "-c", "3d_small", "-tr", *TRAINERS, "-o", str(out)]
    if change[0] == "-c":
        args[args.index("-c") + 1] = change[1]
    else:
        args += change
    proc = subprocess.run([str(exe), *args], env=dataset["env"], capture_output=True, text=True)
    assert proc.returncode != 0 and "other settings" in proc.stderr and change[0].strip("-") in proc.stderr


def test_fewer_trainers_and_seeds_reuse_the_stored_runs(compared):
    dataset, out, _ = compared
    env = {**dataset["env"], "nnUNet_n_proc_DA": "0"}
    args = ["nnunet-holder", "compare", "-d", str(dataset["id"]), "-c", "3d_small", "-tr", TRAINERS[1]]
    stdout = run_cli([*args, "--seeds", "1", "-o", str(out)], env, timeout=900).stdout
    assert ": training" not in stdout and "evaluating" not in stdout
    data = json.loads((out / COMPARISON_JSON).read_text())
    assert data["trainers"] == [TRAINERS[1]] and data["seeds"] == [1]
