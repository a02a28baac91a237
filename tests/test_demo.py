"""The demo's report cites the multi-seed spread it judges one seed's differences by (data the
package owns, derived here from the record in docs/records); its trainings run side by side on the
CPU's cores; it ends with the table and one plain verdict."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from nnunet_holder.trainers.overrides import DEMO

from nnunet_holder.compare.stats import FULL, MISSING
from nnunet_holder.demo import (
    BASELINE,
    DROPOUT,
    HOLDER,
    RECORD_SUMMARY,
    closing_summary,
    demo_header,
    on_recorded_scale,
    quick_header,
    recorded_summary,
    training_jobs,
)

RECORDS = Path(__file__).resolve().parents[1] / "docs" / "records"
MULTI_SEED = RECORDS / "demo_record.json"
BUDGET_RECORD = RECORDS / "demo_record_budget.json"


def recorded_spreads(trainers, epochs, path=MULTI_SEED):
    """Per trainer and group, the seed-to-seed std of the region-mean Dice in the 3-seed record. A
    recorded model counts for `trainer` when its name is the trainer's, or the trainer's followed by
    `epochs` (the record was trained under `*_demo200` names before `_demo` meant 200 epochs)."""
    recorded = json.loads(path.read_text())["models"]
    spreads = {}
    for trainer in trainers:
        for name in (trainer, f"{trainer}{epochs}"):
            if name in recorded:
                stds = {g: v["mean"]["std"] for g, v in recorded[name]["groups"].items()}
                if None not in stds.values():  # a model recorded with one seed has no spread
                    spreads[trainer] = stds
    return spreads


def recorded_doubling_gain(trainer, epochs, path=BUDGET_RECORD):
    """Per group, how many Dice points the seed mean of `trainer`'s validation Dice moved when its
    schedule of `epochs` was doubled, over the seeds trained at both; None without both budgets."""
    budget = json.loads(path.read_text())
    runs = [budget.get(str(n), {}).get(trainer, {}) for n in (epochs, 2 * epochs)]
    seeds = sorted(set(runs[0]) & set(runs[1]))
    if not seeds:
        return None
    return {
        group: sum(runs[1][s][key] - runs[0][s][key] for s in seeds) / len(seeds)
        for group, key in ((MISSING, "miss"), (FULL, "full"))
    }


@pytest.mark.skipif(not MULTI_SEED.is_file(), reason="needs the repository's docs/records")
def test_the_packaged_summary_is_what_the_record_says():
    trainers = [HOLDER, BASELINE, DROPOUT]
    expected = {
        "record": "docs/records/demo_record.md",
        "num_epochs": DEMO["num_epochs"],
        "seed_to_seed_std": recorded_spreads(trainers, DEMO["num_epochs"]),
        "doubling_gain_points": {t: recorded_doubling_gain(t, DEMO["num_epochs"]) for t in trainers},
    }
    assert json.loads(RECORD_SUMMARY.read_text()) == expected, (
        f"regenerate {RECORD_SUMMARY.name}: {json.dumps(expected, indent=2)}"
    )
    spreads, gains = recorded_summary(trainers, DEMO["num_epochs"])
    assert set(spreads) == set(gains) == set(trainers)
    assert recorded_summary(trainers, 2 * DEMO["num_epochs"]) == (None, {})
    assert recorded_summary(["Other_demo"], DEMO["num_epochs"]) == (None, {})


def _record(tmp_path, stds):
    models = {
        name: {"groups": {"missing": {"mean": {"std": a}}, "full": {"mean": {"std": b}}}}
        for name, (a, b) in stds.items()
    }
    path = tmp_path / "demo_record.json"
    path.write_text(json.dumps({"models": models}))
    return path


def test_recorded_spreads_are_per_model_and_only_for_the_demo_schedule(tmp_path):
    path = _record(
        tmp_path,
        {"A_demo200": (0.01, 0.02), "B_demo": (0.03, 0.04), "C_demo100": (0.5, 0.5), "D_demo": (0.1, None)},
    )
    spreads = recorded_spreads(["A_demo", "B_demo", "C_demo", "D_demo"], 200, path)
    assert spreads == {"A_demo": {"missing": 0.01, "full": 0.02}, "B_demo": {"missing": 0.03, "full": 0.04}}


def test_doubling_gain_is_the_seed_mean_over_seeds_trained_at_both_budgets(tmp_path):
    path = tmp_path / "budget.json"
    rows = {
        "200": {
            "D_demo": {
                "0": {"miss": 70.0, "full": 80.0},
                "1": {"miss": 50.0, "full": 60.0},
                "2": {"miss": 60.0, "full": 1.0},
            }
        },
        "400": {
            "D_demo": {"0": {"miss": 72.0, "full": 79.0}, "1": {"miss": 65.0, "full": 70.0}},
            "V_demo": {"0": {"miss": 40.0, "full": 80.0}},
        },
    }
    path.write_text(json.dumps(rows))
    # seed 2 has no 400-epoch run, so it counts for neither budget
    assert recorded_doubling_gain("D_demo", 200, path) == {
        "missing": (2.0 + 15.0) / 2,
        "full": (-1.0 + 10.0) / 2,
    }
    assert recorded_doubling_gain("V_demo", 200, path) is None
    assert recorded_doubling_gain("D_demo", 400, path) is None


def _args(**changes):
    args = {"cases": 48, "spacing": 8.0, "seed": 0, "test_cases": 16, "device": "cpu", **changes}
    return argparse.Namespace(**args)


def test_the_record_applies_only_to_the_demo_data():
    assert on_recorded_scale(_args())
    assert not on_recorded_scale(_args(spacing=6.0))
    assert not on_recorded_scale(_args(cases=20))


def test_header_states_the_schedule_and_each_models_spread():
    spread = {"M_demo": {"missing": 0.031, "full": 0.004}}
    text = demo_header(_args(), spread, {"M_demo": {"missing": 6.54, "full": -0.3}})
    assert f"{DEMO['num_epochs']} epochs × {DEMO['num_iterations_per_epoch']} iterations" in text
    assert "`_demo` trainers" in text and "8.0 mm" in text and "`nnUNet_seed=0`" in text
    assert "M_demo 3.1 (missing subsets) and 0.4 (full set)" in text
    # what twice the budget did to each model, read by the curves' plateau tolerance
    assert f"Twice this budget ({2 * DEMO['num_epochs']} epochs" in text
    assert "M_demo +6.5 and -0.3 points" in text and "Not stopped learning at this budget" in text
    assert "): M_demo." in text and f"{2 * DEMO['num_epochs']}-epoch comparison to decide by" in text
    near = demo_header(
        _args(), spread, {"M_demo": {"missing": 1.9, "full": -1.2}, "N_demo": {"missing": 0.1, "full": 0.0}}
    )
    assert "M_demo +1.9 and -1.2; N_demo +0.1 and +0.0 points" in near
    assert "reaches every model's plateau" in near and "Not stopped" not in near and "decide by" not in near
    mixed = demo_header(
        _args(), spread, {"M_demo": {"missing": 0.5, "full": -2.4}, "N_demo": {"missing": 0.1, "full": 0.0}}
    )
    assert "): M_demo." in mixed
    assert "Twice" not in demo_header(_args(), spread)
    assert "may be noise" in demo_header(_args(), None)


def test_cpu_demo_trains_one_model_per_core_at_most_one_per_trainer(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert training_jobs("cpu", 3) == 2
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert training_jobs("cpu", 3) == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    assert training_jobs("cpu", 3) == 1


def _comparison(means):
    """A comparison.json's models: per model, (missing, full) region means for WT, TC, ET."""

    def group(values):
        return {
            **{r: {"mean": v} for r, v in zip(("WT", "TC", "ET"), values, strict=True)},
            "mean": {"mean": sum(values) / 3},
        }

    return {
        "regions": ["WT", "TC", "ET"],
        "models": {m: {"groups": {MISSING: group(a), FULL: group(b)}} for m, (a, b) in means.items()},
    }


def test_the_closing_summary_is_the_table_and_one_plain_verdict():
    result = _comparison(
        {
            "H_demo": ((0.80, 0.70, 0.50), (0.90, 0.80, 0.60)),
            "V_demo": ((0.50, 0.40, 0.30), (0.92, 0.82, 0.62)),
            "D_demo": ((0.79, 0.70, 0.50), (0.91, 0.80, 0.60)),
        }
    )
    spreads = {m: {MISSING: 0.01, FULL: 0.005} for m in ("H_demo", "V_demo", "D_demo")}
    text = closing_summary(result, spreads, quick=False)
    assert "| H_demo | 80.0 / 70.0 / 50.0 (66.7) | 90.0 / 80.0 / 60.0 (76.7) |" in text
    assert (
        "On the missing-modality subsets, H_demo leads D_demo by 0.3 Dice points, within the recorded "
        "seed-to-seed spread of 1.0: no difference." in text
    )
    assert (
        "On the full set, V_demo leads D_demo by 1.7 Dice points, beyond the recorded seed-to-seed "
        "spread of 0.5." in text
    )
    assert "may be noise" in closing_summary(result, None, quick=False)
    quick = closing_summary(result, None, quick=True)
    assert "not trained enough to compare" in quick and "Verdict" not in quick


def test_quick_header_says_the_models_are_not_trained_enough():
    text = quick_header(_args())
    assert "not trained enough to compare" in text and "3 epochs × 10 iterations" in text
