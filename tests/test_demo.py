"""The demo's report cites the multi-seed spread it judges one seed's differences by; its trainings
run side by side on the CPU's cores."""

from __future__ import annotations

import argparse
import json

from nnunet_holder.trainers.overrides import DEMO

from nnunet_holder.demo import demo_header, known_spread, training_jobs


def _record(tmp_path, stds):
    models = {
        f"M{i}": {"groups": {"missing": {"mean": {"std": a}}, "full": {"mean": {"std": b}}}}
        for i, (a, b) in enumerate(stds)
    }
    path = tmp_path / "demo_record.json"
    path.write_text(json.dumps({"models": models}))
    return path


def test_known_spread_is_the_largest_recorded_std(tmp_path):
    assert known_spread(_record(tmp_path, [(0.01, 0.02), (0.035, None)])) == 0.035
    assert known_spread(tmp_path / "absent.json") is None


def test_header_states_the_schedule_and_the_spread():
    args = argparse.Namespace(cases=48, spacing=8.0, seed=0, test_cases=16, device="cpu")
    text = demo_header(args, 0.031)
    assert f"{DEMO['num_epochs']} epochs × {DEMO['num_iterations_per_epoch']} iterations" in text
    assert "`_demo` trainers" in text and "8.0 mm" in text
    assert "up to 3.1 Dice points" in text and "`nnUNet_seed=0`" in text
    assert "may be noise" in demo_header(args, None)


def test_cpu_demo_trains_one_model_per_core_at_most_one_per_trainer(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert training_jobs("cpu", 3) == 2
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert training_jobs("cpu", 3) == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    assert training_jobs("cpu", 3) == 1
