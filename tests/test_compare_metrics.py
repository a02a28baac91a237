"""`compare --metrics legacy lesion`: the evaluation's metric sets and the report's tables of each metric.

Synthetic per-seed summaries with legacy and lesion-wise Dice columns check that the lesion-wise
section's numbers are the lesion-wise columns' (and the main tables keep the legacy Dice), that a
comparison of the lesion-wise Dice alone heads its tables with it, and that a run evaluated
without a metric set asked for counts as not evaluated. Then the real command evaluates the
session's trained smoke model with both sets and reports both.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nnunet_holder.compare.report import write_report
from nnunet_holder.compare.runs import Run, overlap_kinds
from nnunet_holder.compare.stats import FULL, MEAN_REGION, MISSING
from nnunet_holder.evaluate.tables import paper_subset_order, summarise
from nnunet_holder.file_names import (
    COMPARISON_JSON,
    COMPARISON_MD,
    PER_CASE_TABLE,
    SUBSET_TABLE,
    TIMING,
    comparison_csv,
)
from tests.helpers_nnunet import run_cli

ORDER = paper_subset_order(("T1", "T1c", "T2", "Fl"))
REGIONS = ("WT", "TC", "ET")
KINDS = ("Dice", "LesionDice")


def _summary(rng: np.random.Generator, offset: float):
    rows = [
        {
            "case": f"c{c}",
            "subset": s,
            **{
                f"{k}_{r}": float(np.clip(rng.uniform(0.2, 0.8) + offset, 0, 1))
                for k in KINDS
                for r in REGIONS
            },
        }
        for c in range(3)
        for s in ORDER
    ]
    return summarise(rows, ORDER, [f"{k}_{r}" for k in KINDS for r in REGIONS]), rows


def _direct(rows, kind: str, group: str) -> float:
    subsets = ["Full"] if group == FULL else [s for s in ORDER if s != "Full"]
    per_subset = [
        np.mean([[r[f"{kind}_{g}"] for g in REGIONS] for r in rows if r["subset"] == s]) for s in subsets
    ]
    return float(np.mean(per_subset))


@pytest.fixture
def both():
    rng = np.random.default_rng(3)
    return {m: {s: _summary(rng, off) for s in (0, 1)} for m, off in (("A", 0.1), ("B", 0.0))}


def test_the_lesion_wise_section_holds_the_lesion_wise_columns(both, tmp_path):
    runs = {m: {s: v[0] for s, v in by_seed.items()} for m, by_seed in both.items()}
    kinds = overlap_kinds(["lesion", "legacy"])
    md = write_report(runs, "A", {}, tmp_path, "# t", {}, kinds=kinds).read_text()
    data = json.loads((tmp_path / COMPARISON_JSON).read_text())
    assert data["metric"] == "Dice" and list(data["metrics"]) == ["LesionDice"]
    for kind, entry in (("Dice", data), ("LesionDice", data["metrics"]["LesionDice"])):
        for group in (MISSING, FULL):
            values = entry["models"]["B"]["groups"][group][MEAN_REGION]["per_seed"]
            direct = [_direct(both["B"][s][1], kind, group) for s in (0, 1)]
            assert [values[str(s)] for s in (0, 1)] == pytest.approx(direct, abs=1e-12)
    lesion = md.split("## Lesion-wise Dice")[1].split("## Training curves")[0]
    assert "### Verdict (lesion-wise Dice)" in lesion and "(lesion-wise Dice)," in lesion
    mean = np.mean([_direct(both["B"][s][1], "LesionDice", MISSING) for s in (0, 1)])
    std = np.std([_direct(both["B"][s][1], "LesionDice", MISSING) for s in (0, 1)], ddof=1)
    assert "| B | 2 | " in lesion and f"{100 * mean:.1f} ± {100 * std:.1f}" in lesion
    assert "(Dice %, mean ± std over seeds)" in md.split("## Lesion-wise Dice")[0]
    csv = (tmp_path / comparison_csv("LesionDice")).read_text().splitlines()
    assert csv[0] == "model,seed,region,subset,lesiondice"


def test_a_comparison_of_the_lesion_wise_dice_alone_heads_its_tables_with_it(both, tmp_path):
    runs = {m: {s: v[0] for s, v in by_seed.items()} for m, by_seed in both.items()}
    md = write_report(runs, "A", {}, tmp_path, "# t", {}, kinds=overlap_kinds(["lesion"])).read_text()
    assert "(lesion-wise Dice %, mean ± std over seeds)" in md and "(Dice %" not in md
    assert json.loads((tmp_path / COMPARISON_JSON).read_text())["metric"] == "LesionDice"


def test_a_run_evaluated_without_a_metric_set_asked_for_is_not_evaluated(tmp_path):
    run = Run("T", 0, tmp_path, "Dataset001_X", "nnUNetPlans", "3d_fullres", 0, metrics=("legacy", "lesion"))
    run.evaluation_folder.mkdir(parents=True)
    (run.evaluation_folder / TIMING).write_text(json.dumps({"failures": []}))
    (run.evaluation_folder / SUBSET_TABLE).write_text(json.dumps({"metrics": ["Dice_WT", "HD95_WT"]}))
    assert not run.evaluated
    assert Run("T", 0, tmp_path, "Dataset001_X", "nnUNetPlans", "3d_fullres", 0).evaluated
    (run.evaluation_folder / SUBSET_TABLE).write_text(
        json.dumps({"metrics": ["Dice_WT", "HD95_WT", "LesionDice_WT", "LesionHD95_WT"]})
    )
    assert run.evaluated


def test_compare_evaluates_and_reports_both_metric_sets(trained, tmp_path):
    """The session's trained model placed as a comparison's run: the command only evaluates and reports."""
    out = tmp_path / "cmp"
    model = out / "models" / "seed_0" / trained["name"] / trained["fold"].parent.name
    shutil.copytree(trained["fold"].parent, model)
    args = ["nnunet-holder", "compare", "-d", str(trained["id"]), "-c", "3d_fullres"]
    args += ["-tr", trained["trainer"]]
    args += ["--seeds", "0", "-o", str(out), "--metrics", "legacy", "lesion"]
    stdout = run_cli(args, trained["env"]).stdout
    assert ": training" not in stdout and "report:" in stdout
    table = json.loads((out / "evaluation" / trained["trainer"] / "seed_0" / SUBSET_TABLE).read_text())
    assert {m.split("_")[0] for m in table["metrics"]} == {"Dice", "HD95", "LesionDice", "LesionHD95"}
    data = json.loads((out / COMPARISON_JSON).read_text())
    lesion = data["metrics"]["LesionDice"]["models"][trained["trainer"]]["groups"]
    evaluation = out / "evaluation" / trained["trainer"] / "seed_0"
    assert "LesionDice_WT" in (evaluation / PER_CASE_TABLE).read_text().splitlines()[0]
    assert 0 <= lesion[FULL][MEAN_REGION]["mean"] <= 1
    md = (out / COMPARISON_MD).read_text()
    assert "## Lesion-wise Dice" in md and "(Dice %, mean ± std over seeds)" in md
    assert (out / comparison_csv("LesionDice")).is_file()
