"""The demo's verdict says plainly who wins on the missing-modality subsets."""

from __future__ import annotations

import argparse

from nnunet_holder.trainers.overrides import DEMO

from nnunet_holder.demo import verdict, write_report
from nnunet_holder.evaluate.tables import paper_subset_order, summarise

ORDER = paper_subset_order(("T1", "T1c", "T2", "Fl"))


def _summary(dice_by_subset: dict[str, float]):
    rows = [
        {"case": "c0", "subset": s, "Dice_WT": d, "Dice_TC": d, "Dice_ET": d}
        for s, d in dice_by_subset.items()
    ]
    return summarise(rows, ORDER, ["Dice_WT", "Dice_TC", "Dice_ET"])


def test_verdict_counts_wins_and_names_the_losses():
    base = {s: 0.5 for s in ORDER}
    better = {**{s: 0.6 for s in ORDER}, "Fl": 0.4, "Full": 0.3}
    lines = verdict({"H": _summary(better), "V": _summary(base)}, "H", ["V"])
    assert lines[0].startswith("H beats, on most but not all, V")
    assert "13 of 14" in lines[0] and "does not win: Fl." in lines[0]
    assert "Full set: 30.0 vs 50.0" in lines[0]


def test_verdict_says_does_not_beat_at_half_or_fewer():
    half = {s: (0.6 if i % 2 else 0.4) for i, s in enumerate(ORDER)}
    lines = verdict({"H": _summary(half), "V": _summary({s: 0.5 for s in ORDER})}, "H", ["V"])
    assert lines[0].startswith("H does NOT beat V") and "7 of 14" in lines[0]


def test_verdict_beats_everywhere():
    lines = verdict(
        {"H": _summary({s: 0.9 for s in ORDER}), "V": _summary({s: 0.5 for s in ORDER})}, "H", ["V"]
    )
    assert lines[0].startswith("H beats V") and "does not win" not in lines[0]


def test_report_states_the_schedule_and_the_verdict(tmp_path):
    summaries = {"H": _summary({s: 0.9 for s in ORDER}), "V": _summary({s: 0.5 for s in ORDER})}
    lines = verdict(summaries, "H", ["V"])
    args = argparse.Namespace(cases=32, spacing=5.0, seed=0, test_cases=8, device="cpu")
    text = write_report(tmp_path, ["H", "V"], summaries, lines, 600.0, args).read_text()
    assert f"{DEMO['num_epochs']} epochs × {DEMO['num_iterations_per_epoch']} iterations" in text
    assert "total time 10.0 min" in text and lines[0] in text
    assert "| WT | H | 90.0 |" in text
