"""The demo's report cites the multi-seed spread it judges one seed's differences by; its trainings
run side by side on the CPU's cores."""

from __future__ import annotations

import argparse
import json

from nnunet_holder.trainers.overrides import DEMO

from nnunet_holder.demo import (
    BUDGET_RECORD,
    DROPOUT,
    MULTI_SEED,
    demo_header,
    on_recorded_scale,
    recorded_doubling_gain,
    recorded_spreads,
    training_jobs,
)


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
    assert recorded_spreads(["A_demo"], 200, tmp_path / "absent.json") is None


def test_the_repository_record_covers_every_demo_trainer():
    from nnunet_holder.demo import BASELINE, DROPOUT, HOLDER

    spreads = recorded_spreads([HOLDER, BASELINE, DROPOUT], DEMO["num_epochs"], MULTI_SEED)
    assert set(spreads) == {HOLDER, BASELINE, DROPOUT}


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
    assert recorded_doubling_gain("D_demo", 200, tmp_path / "absent.json") is None


def test_the_repository_budget_record_covers_every_demo_trainer_at_twice_the_demo_schedule():
    from nnunet_holder.demo import BASELINE, HOLDER

    for trainer in (HOLDER, BASELINE, DROPOUT):
        assert recorded_doubling_gain(trainer, DEMO["num_epochs"], BUDGET_RECORD) is not None, trainer


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
