"""Seed statistics, paired differences, verdict and plateau detection, against direct computation."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from nnunet_holder.compare.curves import converged, late_rise, plateau_start
from nnunet_holder.compare.report import (
    FLAT_END_CAVEAT,
    seed_table,
    summary_table,
    to_json,
    write_csv,
    write_report,
)
from nnunet_holder.compare.result import compare_result
from nnunet_holder.compare.stats import FULL, MEAN_REGION, MISSING, metric_result, seed_stat
from nnunet_holder.evaluate.tables import paper_subset_order, summarise
from nnunet_holder.file_names import COMPARISON_CSV, COMPARISON_JSON, comparison_csv
from nnunet_holder.subsets import all_subsets, subset_name

ORDER = paper_subset_order(("T1", "T1c", "T2", "Fl"))
REGIONS = ("WT", "TC", "ET")


def _summary(rng: np.random.Generator, offset: float = 0.0, cases: int = 4):
    rows = [
        {
            "case": f"c{c}",
            "subset": s,
            **{f"Dice_{r}": float(np.clip(rng.uniform(0.3, 0.9) + offset, 0, 1)) for r in REGIONS},
        }
        for c in range(cases)
        for s in ORDER
    ]
    return summarise(rows, ORDER, [f"Dice_{r}" for r in REGIONS]), rows


def _direct_group(rows, group: str, region: str) -> float:
    subsets = ["Full"] if group == FULL else [s for s in ORDER if s != "Full"]
    regions = REGIONS if region == MEAN_REGION else (region,)
    per_subset = [
        np.mean([[r[f"Dice_{g}"] for g in regions] for r in rows if r["subset"] == s]) for s in subsets
    ]
    return float(np.mean(per_subset))


def test_seed_mean_std_and_paired_differences_equal_a_direct_computation():
    rng = np.random.default_rng(0)
    a = {seed: _summary(rng, 0.05) for seed in (0, 1, 2)}
    b = {seed: _summary(rng) for seed in (0, 1, 2)}
    result = metric_result({"A": {s: v[0] for s, v in a.items()}, "B": {s: v[0] for s, v in b.items()}}, "B")
    for group in (MISSING, FULL):
        for region in (*REGIONS, MEAN_REGION):
            direct_a = [_direct_group(a[s][1], group, region) for s in (0, 1, 2)]
            direct_b = [_direct_group(b[s][1], group, region) for s in (0, 1, 2)]
            stat = seed_stat(result.groups["A"][group][region])
            assert stat.mean == pytest.approx(np.mean(direct_a), abs=1e-12)
            assert stat.std == pytest.approx(np.std(direct_a, ddof=1), abs=1e-12)
            d = result.differences["A"][region][MISSING if group == MISSING else "Full"]
            diffs = np.subtract(direct_a, direct_b)
            assert d.differences == pytest.approx(tuple(diffs), abs=1e-12)
            assert d.wins == int((diffs > 0).sum()) and d.losses == int((diffs < 0).sum())


def test_one_seed_has_no_spread():
    stat = seed_stat({0: 0.5})
    assert stat.mean == 0.5 and math.isnan(stat.std)


def _constant(value: float):
    rows = [{"case": "c0", "subset": s, **{f"Dice_{r}": value for r in REGIONS}} for s in ORDER]
    return summarise(rows, ORDER, [f"Dice_{r}" for r in REGIONS])


def verdict(model: str, reference: str, model_runs, reference_runs, known_spreads=None) -> str:
    """The comparison's verdict on `model` against `reference`."""
    runs = {model: model_runs, reference: reference_runs}
    return metric_result(runs, reference, known_spreads=known_spreads).verdicts[0]


def test_verdict_changes_with_the_numbers():
    reference = {0: _constant(0.50), 1: _constant(0.52), 2: _constant(0.54)}  # std 2 points
    clearly_better = {s: _constant(v.stats["Full"]["Dice_WT"].mean + 0.10) for s, v in reference.items()}
    within_spread = {s: _constant(v.stats["Full"]["Dice_WT"].mean + 0.01) for s, v in reference.items()}
    clearly_worse = {s: _constant(v.stats["Full"]["Dice_WT"].mean - 0.10) for s, v in reference.items()}
    text = verdict("M", "R", clearly_better, reference)
    assert "M is better than R" in text and "beyond the seed-to-seed spread (2.0)" in text
    assert "better on 3 of 3 seeds" in text
    text = verdict("M", "R", within_spread, reference)
    assert "no difference between M and R" in text and "within the seed-to-seed spread" in text
    assert "R is better than M" in verdict("M", "R", clearly_worse, reference)
    one = verdict("M", "R", {0: _constant(0.6)}, {0: _constant(0.5)})
    assert "one seed" in one and "unknown" in one
    known = {"M": {FULL: 0.03, MISSING: 0.03}, "R": {FULL: 0.01, MISSING: 0.01}}
    text = verdict("M", "R", {0: _constant(0.51)}, {0: _constant(0.5)}, known_spreads=known)
    assert "no difference" in text and "measured with several seeds (3.0)" in text
    assert "unknown" in verdict("M", "X", {0: _constant(0.51)}, {0: _constant(0.5)}, known_spreads=known)


def test_one_seed_pair_is_judged_by_its_own_recorded_spread():
    """The demo's record: vanilla beat the paper's network on the full set by 5.7 points on 3 of 3
    seeds (stds 0.4 and 0.6) while dropout's std was 7.7; the one-seed demo said "no difference"
    when it judged every pair by the largest std of the record."""
    known = {
        "V": {FULL: 0.004, MISSING: 0.019},
        "H": {FULL: 0.006, MISSING: 0.006},
        "D": {FULL: 0.077, MISSING: 0.057},
    }
    text = verdict("V", "H", {0: _constant(0.779)}, {0: _constant(0.729)}, known_spreads=known)
    assert "On the full set, V is better than H" in text and "(0.6)" in text
    text = verdict("D", "H", {0: _constant(0.779)}, {0: _constant(0.729)}, known_spreads=known)
    assert "On the full set, no difference between D and H" in text and "(7.7)" in text


def test_report_files_hold_the_same_numbers(tmp_path):
    rng = np.random.default_rng(1)
    runs = {"A": {s: _summary(rng, 0.1)[0] for s in (0, 1)}, "B": {s: _summary(rng)[0] for s in (0, 1)}}
    comparison = compare_result(runs, "A", {})
    data = to_json(comparison, comparison.main, {"dataset": "x"})
    missing = data["models"]["B"]["groups"][MISSING][MEAN_REGION]
    assert missing["mean"] == pytest.approx(np.mean(list(missing["per_seed"].values())))
    table = summary_table(comparison.main)
    assert f"{100 * missing['mean']:.1f} ± {100 * missing['std']:.1f}" in table
    rows = write_csv(comparison.main, tmp_path / "c.csv").read_text().splitlines()
    assert rows[0] == "model,seed,region,subset,dice"
    assert len(rows) == 1 + 2 * 2 * 4 * (len(ORDER) + 1)
    json.dumps(data)  # serialisable


def test_the_report_says_what_its_converged_column_cannot_tell(tmp_path):
    # a flat end under a learning rate that falls to zero is not a plateau (docs/records/demo_record.md)
    rng = np.random.default_rng(2)
    runs = {"A": {s: _summary(rng, 0.1)[0] for s in (0, 1)}, "B": {s: _summary(rng)[0] for s in (0, 1)}}
    md = write_report(runs, "A", {}, tmp_path, "# header", {"dataset": "x"}).read_text()
    assert FLAT_END_CAVEAT in md.split("## Training curves")[1]


def test_a_comparison_of_one_model_says_so_instead_of_empty_verdict_and_difference_sections(tmp_path):
    rng = np.random.default_rng(3)
    one = write_report({"A": {s: _summary(rng)[0] for s in (0, 1)}}, "A", {}, tmp_path / "one", "# t", {})
    md = one.read_text()
    verdict = md.split("## Verdict")[1].split("\n## ")[0]
    assert "One model, A: no verdict and no paired differences" in verdict
    assert "Paired differences" not in md
    runs = {"A": {s: _summary(rng, 0.1)[0] for s in (0, 1)}, "B": {s: _summary(rng)[0] for s in (0, 1)}}
    two = write_report(runs, "A", {}, tmp_path / "two", "# t", {}).read_text()
    assert "## Paired differences against A" in two and "One model" not in two


@pytest.mark.parametrize(
    ("curve", "start"),
    [
        ([0.1, 0.5, 0.8, 0.81, 0.80, 0.80], 2),
        ([0.8] * 5, 0),
        ([0.1, 0.2, 0.3, 0.4], 3),
        ([0.8, 0.5, 0.79, 0.8], 2),
    ],
)
def test_plateau_start(curve, start):
    assert plateau_start(curve) == start


def test_plateau_start_is_the_first_epoch_of_a_tail_within_tolerance():
    rng = np.random.default_rng(2)
    for _ in range(200):
        curve = list(np.cumsum(rng.normal(0, 0.02, size=int(rng.integers(1, 30)))))
        start = plateau_start(curve)
        tail = np.asarray(curve[start:])
        assert np.all(np.abs(tail - curve[-1]) <= 0.02)
        if start > 0:
            assert abs(curve[start - 1] - curve[-1]) > 0.02


def test_late_rise_of_a_line_and_convergence():
    ramp = list(np.linspace(0.2, 0.6, 41))  # +0.01 per epoch
    assert late_rise(ramp) == pytest.approx(0.10)  # 11 epochs of the last quarter: 10 steps
    assert not converged(ramp)
    # flat with a late noise peak above the final value: stopped improving, though the tail is not
    # within 2 points of the last value (the rule before 80-epoch runs called it unconverged)
    flat = [0.8] * 30 + [0.8, 0.83, 0.8, 0.79, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    assert plateau_start(flat) == 32 and converged(flat)
    assert late_rise([0.5]) == 0.0


def test_json_and_markdown_verdicts_agree_when_recorded_spreads_judge_a_one_seed_comparison(tmp_path):
    """With one seed, the recorded spreads decide; the JSON once ignored them and said "unknown"."""
    runs = {"V": {0: _constant(0.779)}, "H": {0: _constant(0.729)}}
    known = {"V": {FULL: 0.004, MISSING: 0.019}, "H": {FULL: 0.006, MISSING: 0.006}}
    md = write_report(runs, "H", {}, tmp_path, "# t", {"dataset": "x"}, known).read_text()
    data = json.loads((tmp_path / COMPARISON_JSON).read_text())
    assert "On the full set, V is better than H" in data["verdict"][0]
    assert all(f"- {line}" in md for line in data["verdict"])


def test_an_incomplete_test_case_counts_only_for_its_subsets_and_the_table_says_how_many():
    """A test case without T1c has no row for a subset that holds T1c (Full among them): those
    subsets average the other cases, and the every-subset table gives the cases behind each column."""
    with_t1c = {subset_name(s, ("T1", "T1c", "T2", "Fl")) for s in all_subsets(4) if 1 in s}
    rng = np.random.default_rng(4)
    runs = {}
    for model, offset in (("a", 0.05), ("b", 0.0)):
        seeds = {}
        for seed in (0, 1):
            _, rows = _summary(rng, offset, cases=3)
            rows = [r for r in rows if not (r["case"] == "c2" and r["subset"] in with_t1c)]
            seeds[seed] = summarise(rows, ORDER, [f"Dice_{r}" for r in REGIONS])
        runs[model] = seeds
    assert runs["a"][0].stats["Full"]["Dice_WT"].n == 2 and runs["a"][0].stats["~T1c"]["Dice_WT"].n == 3
    table = seed_table(metric_result(runs, "a"))
    counts = [2 if s in with_t1c else 3 for s in ORDER]
    assert f"| cases | a | {' | '.join(map(str, counts))} | – |" in table


def test_markdown_csv_and_json_show_the_same_numbers(tmp_path):
    """Every per-seed value of the CSV is the JSON's, and every cell of the Markdown's every-subset
    table is the seed mean ± std of those values, for the main metric and a further one."""
    rng = np.random.default_rng(3)
    kinds = ("Dice", "LesionDice")

    def summary(offset: float):
        rows = [
            {
                "case": f"c{c}",
                "subset": s,
                **{f"{k}_{r}": rng.uniform(0.3, 0.9) + offset for k in kinds for r in REGIONS},
            }
            for c in range(3)
            for s in ORDER
        ]
        return summarise(rows, ORDER, [f"{k}_{r}" for k in kinds for r in REGIONS])

    runs = {"A": {s: summary(0.05) for s in (0, 1, 2)}, "B": {s: summary(0.0) for s in (0, 1, 2)}}
    md = write_report(runs, "A", {}, tmp_path, "# t", {}, kinds=kinds).read_text()
    data = json.loads((tmp_path / COMPARISON_JSON).read_text())
    for kind, csv_file, models in (
        ("Dice", tmp_path / COMPARISON_CSV, data["models"]),
        ("LesionDice", tmp_path / comparison_csv("LesionDice"), data["metrics"]["LesionDice"]["models"]),
    ):
        rows = list(csv.DictReader(csv_file.open()))
        assert len(rows) == 2 * 3 * 4 * (len(ORDER) + 1)
        for row in rows:
            entry = models[row["model"]]
            if row["subset"] == "Missing (mean of 14)":
                expected = entry["groups"][MISSING][row["region"]]["per_seed"][row["seed"]]
            else:
                expected = entry["subsets"][row["subset"]][row["region"]][row["seed"]]
            assert float(row[kind.lower()]) == pytest.approx(expected, abs=5e-7)
        table = md.split("Every subset")[1 if kind == "Dice" else 2]
        for model, entry in models.items():
            for region in (*REGIONS, MEAN_REGION):
                line = next(x for x in table.splitlines() if x.startswith(f"| {region} | {model} |"))
                cells = [c.strip() for c in line.strip("|").split("|")[2:]]
                values = [entry["subsets"][s][region] for s in ORDER] + [
                    entry["groups"][MISSING][region]["per_seed"]
                ]
                for cell, per_seed in zip(cells, values, strict=True):
                    stat = seed_stat({int(k): v for k, v in per_seed.items()})
                    assert cell == f"{100 * stat.mean:.1f} ± {100 * stat.std:.1f}"
