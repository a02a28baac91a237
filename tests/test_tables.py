"""The subset table: statistics against numpy, the paper's order and layout, file formats, comparisons."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from nnunet_holder.evaluate.metrics import metric_columns
from nnunet_holder.evaluate.tables import (
    AVERAGE,
    comparison_table,
    load_summary,
    paper_subset_order,
    read_case_csv,
    summarise,
    summary_markdown,
    write_case_csv,
    write_comparison_csv,
    write_summary,
)

BRATS = ("T1", "T1c", "T2", "Fl")
REGIONS = ["WT", "TC", "ET"]
METRICS = metric_columns(REGIONS)
# Table II of the paper, column by column
PAPER_TABLE_II_ORDER = [
    "Fl", "T2", "T1c", "T1", "T2+Fl", "T1c+Fl", "T1c+T2", "T1+Fl", "T1+T2", "T1+T1c",
    "~T1", "~T1c", "~T2", "~Fl", "Full",
]  # fmt: skip


def make_rows(order, n_cases=4, seed=0, metrics=METRICS):
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_cases):
        for subset in order:
            row = {"case": f"case_{c:03d}", "subset": subset}
            for m in metrics:
                row[m] = float(rng.uniform(0, 1) if m.startswith("Dice") else rng.uniform(0, 40))
            rows.append(row)
    return rows


def column(rows, subset, metric):
    return np.array([r[metric] for r in rows if r["subset"] == subset])


def population_std(x):
    return math.sqrt(sum((v - x.mean()) ** 2 for v in x) / len(x))


def parse_markdown_tables(text):
    """Tables of a Markdown document as lists of cell rows (header first, separator dropped)."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_paper_order_for_brats():
    assert paper_subset_order(BRATS) == PAPER_TABLE_II_ORDER


def test_summary_statistics_against_numpy():
    order = paper_subset_order(BRATS)
    rows = make_rows(order, n_cases=5)
    summary = summarise(rows, order, METRICS, BRATS)
    assert summary.order == order
    for subset in order:
        for m in METRICS:
            x = column(rows, subset, m)
            stat = summary.stats[subset][m]
            assert stat.mean == pytest.approx(x.sum() / len(x), rel=1e-12)
            assert stat.std == pytest.approx(population_std(x), rel=1e-9)
            assert stat.n == 5
    for m in METRICS:
        subset_means = [column(rows, s, m).mean() for s in order]
        case_means = [
            np.mean([r[m] for r in rows if r["case"] == c]) for c in sorted({r["case"] for r in rows})
        ]
        avg = summary.stats[AVERAGE][m]
        assert avg.mean == pytest.approx(np.mean(subset_means), rel=1e-12)
        assert avg.std == pytest.approx(population_std(np.array(case_means)), rel=1e-9)
        assert avg.n == 5


def test_markdown_is_in_the_paper_orientation():
    order = paper_subset_order(BRATS)
    rows = make_rows(order, n_cases=3, seed=1)
    summary = summarise(rows, order, METRICS, BRATS)
    text = summary_markdown(summary)
    assert "Dice (%)" in text and "HD95 (mm)" in text and text.index("Dice (%)") < text.index("HD95 (mm)")
    dice_table, hd_table = parse_markdown_tables(text)
    for table, kind, scale, decimals in [(dice_table, "Dice", 100, 1), (hd_table, "HD95", 1, 2)]:
        assert table[0] == ["Region", *PAPER_TABLE_II_ORDER, "Avg"]
        assert [r[0] for r in table[1:]] == REGIONS
        for row in table[1:]:
            metric = f"{kind}_{row[0]}"
            for subset, cell in zip(order, row[1:-1], strict=True):
                x = column(rows, subset, metric) * scale
                assert cell == f"{x.mean():.{decimals}f} ± {population_std(x):.{decimals}f}"
            avg = np.mean([column(rows, s, metric).mean() for s in order]) * scale
            assert row[-1].split(" ± ")[0] == f"{avg:.{decimals}f}"


def test_three_modalities():
    names = ("A", "B", "C")
    order = paper_subset_order(names)
    assert order == ["C", "B", "A", "~A", "~B", "~C", "Full"]
    rows = make_rows(order, n_cases=2, seed=2, metrics=metric_columns(["tumour"]))
    summary = summarise(rows, order, metric_columns(["tumour"]), names)
    dice_table, hd_table = parse_markdown_tables(summary_markdown(summary))
    assert dice_table[0] == ["Region", *order, "Avg"]
    assert [r[0] for r in hd_table[1:]] == ["tumour"]
    assert summary.stats["~B"]["Dice_tumour"].mean == pytest.approx(column(rows, "~B", "Dice_tumour").mean())


def test_write_summary_and_json_round_trip(tmp_path):
    order = paper_subset_order(BRATS)
    rows = make_rows(order, n_cases=3, seed=3)
    summary = summarise(rows, order, METRICS, BRATS)
    paths = write_summary(summary, tmp_path / "out", stem="table")
    assert {k: p.name for k, p in paths.items()} == {
        "csv": "table.csv",
        "md": "table.md",
        "json": "table.json",
    }

    with paths["csv"].open() as f:
        long_rows = list(csv.DictReader(f))
    assert list(long_rows[0]) == ["subset", "metric", "mean", "std", "n"]
    assert len(long_rows) == (len(order) + 1) * len(METRICS)
    for r in long_rows:
        if r["subset"] != AVERAGE:
            x = column(rows, r["subset"], r["metric"])
            assert float(r["mean"]) == pytest.approx(x.mean(), rel=1e-12)
            assert float(r["std"]) == pytest.approx(population_std(x), rel=1e-9)
            assert int(r["n"]) == 3

    data = json.loads(paths["json"].read_text())
    assert data["order"] == PAPER_TABLE_II_ORDER
    assert data["modality_names"] == list(BRATS)
    assert data["T1c+Fl"]["Dice_ET"]["mean"] == pytest.approx(column(rows, "T1c+Fl", "Dice_ET").mean())

    loaded = load_summary(paths["json"])
    assert loaded == summary
    assert paths["md"].read_text() == summary_markdown(summary)


def test_incomplete_cases_give_an_average_without_std(tmp_path):
    order = paper_subset_order(("A", "B"))
    rows = [
        r for r in make_rows(order, n_cases=3, seed=4) if not (r["case"] == "case_000" and r["subset"] == "A")
    ]
    summary = summarise(rows, order, METRICS)
    avg = summary.stats[AVERAGE]["Dice_WT"]
    assert math.isnan(avg.std) and avg.n == 0
    assert avg.mean == pytest.approx(np.mean([column(rows, s, "Dice_WT").mean() for s in order]))
    assert summary.stats["A"]["Dice_WT"].n == 2
    dice_table = parse_markdown_tables(summary_markdown(summary))[0]
    assert "±" not in dice_table[1][-1]
    loaded = load_summary(write_summary(summary, tmp_path)["json"])
    assert math.isnan(loaded.stats[AVERAGE]["Dice_WT"].std)
    assert loaded.stats["A"] == summary.stats["A"]


def test_summarise_rejects_inconsistent_rows():
    order = paper_subset_order(("A", "B"))
    rows = make_rows(order, n_cases=2)
    with pytest.raises(ValueError, match="not in the subset order"):
        summarise(rows, order[:-1], METRICS)
    with pytest.raises(ValueError, match="twice"):
        summarise(rows + rows[:1], order, METRICS)
    with pytest.raises(ValueError, match="no rows"):
        summarise([], order, METRICS)


def test_incomplete_cases_count_per_subset_and_the_tables_show_it():
    """A case lacking B has rows for A alone: each subset averages the cases that have it, a subset
    no case has is NaN with n 0 outside the average, and the tables give the count per column."""
    order = [*paper_subset_order(("A", "B")), "C"]
    rows = make_rows(paper_subset_order(("A", "B")), n_cases=2)
    rows += [{**row, "case": "lacks_b"} for row in make_rows(["A"], n_cases=1, seed=3)]
    summary = summarise(rows, order, METRICS)
    assert [summary.stats[s][METRICS[0]].n for s in order] == [2, 3, 2, 0]
    assert summary.stats["A"][METRICS[0]].mean == pytest.approx(np.mean(column(rows, "A", METRICS[0])))
    assert math.isnan(summary.stats["C"][METRICS[0]].mean)
    means = [summary.stats[s][METRICS[0]].mean for s in order[:3]]
    assert summary.stats[AVERAGE][METRICS[0]].mean == pytest.approx(np.mean(means))
    markdown = summary_markdown(summary)
    assert "| cases | 2 | 3 | 2 | 0 | – |" in markdown
    assert "over 0–3 cases (row 'cases') per subset" in markdown
    complete = summarise(make_rows(order[:3], n_cases=2), order[:3], METRICS)
    assert "| cases |" not in summary_markdown(complete)
    assert "| cases | x |" in comparison_table({"x": summary, "y": summary})


def test_case_csv_round_trip(tmp_path):
    order = paper_subset_order(BRATS)
    rows = make_rows(order, n_cases=2, seed=5)
    path = write_case_csv(rows, tmp_path / "cases.csv")
    with path.open() as f:
        assert next(csv.reader(f)) == ["case", "subset", *METRICS]
    assert read_case_csv(path) == rows
    with pytest.raises(ValueError, match="columns"):
        write_case_csv([rows[0], {"case": "x", "subset": "Fl"}], tmp_path / "bad.csv")


def test_comparison_table_and_csv(tmp_path):
    order = paper_subset_order(BRATS)
    models = {
        "ours": summarise(make_rows(order, seed=6), order, METRICS, BRATS),
        "baseline": summarise(make_rows(order, seed=7), order, METRICS, BRATS),
    }
    table = parse_markdown_tables(comparison_table(models, metric="Dice"))[0]
    assert table[0] == ["Region", "Model", *PAPER_TABLE_II_ORDER, "Avg"]
    assert [(r[0], r[1]) for r in table[1:]] == [(reg, m) for reg in REGIONS for m in ("ours", "baseline")]
    for row in table[1:]:
        stats = models[row[1]].stats
        expected = [f"{stats[s][f'Dice_{row[0]}'].mean * 100:.1f}" for s in [*order, AVERAGE]]
        assert row[2:] == expected

    hd = parse_markdown_tables(comparison_table(models, metric="HD95", with_std=True))[0]
    assert all(" ± " in cell for cell in hd[1][2:])

    path = write_comparison_csv(models, tmp_path / "cmp.csv", metric="Dice")
    with path.open() as f:
        csv_rows = list(csv.reader(f))
    assert csv_rows[0] == ["region", "model", *order, AVERAGE]
    for row in csv_rows[1:]:
        stats = models[row[1]].stats
        assert [float(v) for v in row[2:]] == [stats[s][f"Dice_{row[0]}"].mean for s in [*order, AVERAGE]]

    other = summarise(
        make_rows(paper_subset_order(("A", "B")), seed=8), paper_subset_order(("A", "B")), METRICS
    )
    with pytest.raises(ValueError, match="different subset order"):
        comparison_table({**models, "other": other})
