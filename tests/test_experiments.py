"""Fast checks of the paper-reproduction recipes and the benchmark helpers.

The gather script `experiments/compare.py` is run on subset tables written by the evaluation layer
from hand-made rows, and its numbers are checked against means computed here from those rows; the
shell scripts are syntax-checked and dry-run, and every trainer they or the README name must exist;
the benchmarks' plans builder and docs-section writer are checked without timing anything.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnunet_holder.evaluate.metrics import metric_columns
from nnunet_holder.evaluate.tables import paper_subset_order, summarise, write_summary
from nnunet_holder.file_names import SUBSET_TABLE
from nnunet_holder.subsets import all_subsets, subset_name

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = REPO / "experiments"
SCRIPTS = sorted(EXPERIMENTS.glob("table*.sh"))
BRATS = ("T1", "T1c", "T2", "Fl")
ORDER = paper_subset_order(BRATS)
REGIONS = ["WT", "TC", "ET"]
METRICS = metric_columns(REGIONS)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


compare = _load(EXPERIMENTS / "compare.py", "experiments_compare")
ceiling_tables = _load(EXPERIMENTS / "ceiling_tables.py", "experiments_ceiling_tables")
threshold_sweep = _load(EXPERIMENTS / "threshold_sweep.py", "experiments_threshold_sweep")
sys.path.insert(0, str(REPO / "benchmarks"))
common = _load(REPO / "benchmarks" / "_common.py", "_common")


def make_rows(seed: int, n_cases: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_cases):
        for subset in ORDER:
            row = {"case": f"case_{c}", "subset": subset}
            for m in METRICS:
                row[m] = float(rng.uniform(0, 1) if m.startswith("Dice") else rng.uniform(0, 50))
            rows.append(row)
    return rows


def subset_mean(rows: list[dict], subset: str, metric: str) -> float:
    return float(np.mean([r[metric] for r in rows if r["subset"] == subset]))


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict:
    """Three evaluations: model A on two splits, model B on one, as evaluate-subsets writes them."""
    root = tmp_path_factory.mktemp("results")
    rows = {("s1", "A"): make_rows(1), ("s2", "A"): make_rows(2), ("s1", "B"): make_rows(3)}
    for (split, model), r in rows.items():
        write_summary(summarise(r, ORDER, METRICS, modality_names=BRATS), root / split / model)
    return {"root": root, "rows": rows}


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_compare_script_subsets_layout_matches_the_inputs(tables, tmp_path):
    root, rows = tables["root"], tables["rows"]
    stem = tmp_path / "out" / "table2"
    proc = subprocess.run(
        [sys.executable, str(EXPERIMENTS / "compare.py"), f"Holder={root / 's1' / 'A'}",
         str(root / "s1" / "B" / SUBSET_TABLE), "-o", str(stem)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    header = next(line for line in proc.stdout.splitlines() if line.startswith("| Region"))
    assert header.split("|")[3:-1] == [f" {s} " for s in [*ORDER, "Avg"]]
    assert f"| WT | Holder | {subset_mean(rows['s1', 'A'], 'Fl', 'Dice_WT') * 100:.1f} |" in proc.stdout
    assert stem.with_suffix(".md").read_text() == proc.stdout.rstrip("\n") + "\n"
    out = read_csv(stem.with_suffix(".csv"))
    assert [(r["region"], r["model"]) for r in out] == [(g, m) for g in REGIONS for m in ("Holder", "B")]
    for r in out:
        source = rows["s1", "A" if r["model"] == "Holder" else "B"]
        metric = f"Dice_{r['region']}"
        expected = [subset_mean(source, s, metric) for s in ORDER]
        assert [float(r[s]) for s in ORDER] == pytest.approx(expected, rel=1e-12)
        assert float(r["Average"]) == pytest.approx(np.mean(expected), rel=1e-12)


def test_average_over_splits_is_the_mean_of_the_split_means(tables, tmp_path, capsys):
    root, rows = tables["root"], tables["rows"]
    stem = tmp_path / "mean"
    assert compare.main(["--average", str(root / "s*" / "A"), "--metric", "HD95", "-o", str(stem)]) == 0
    (row_wt, *_) = read_csv(stem.with_suffix(".csv"))
    assert row_wt["model"] == "A" and row_wt["region"] == "WT"
    for s in ORDER:
        split_means = [subset_mean(rows[split, "A"], s, "HD95_WT") for split in ("s1", "s2")]
        assert float(row_wt[s]) == pytest.approx(np.mean(split_means), rel=1e-12)
    assert "HD95 (mm)" in capsys.readouterr().out


def test_several_tables_under_one_name_need_average(tables):
    with pytest.raises(SystemExit, match="--average"):
        compare.main([str(tables["root"] / "s*" / "A")])
    with pytest.raises(SystemExit, match="no subset_table.json"):
        compare.main([str(tables["root"] / "nowhere")])


def test_regions_layout(tables, tmp_path):
    root, rows = tables["root"], tables["rows"]
    stem = tmp_path / "regions"
    compare.main(["--layout", "regions", f"KL={root / 's1' / 'B'}", f"Hölder={root / 's1' / 'A'}",
                  "-o", str(stem)])
    out = {r["model"]: r for r in read_csv(stem.with_suffix(".csv"))}
    assert list(out) == ["KL", "Hölder"]
    means = [np.mean([subset_mean(rows["s1", "A"], s, f"Dice_{g}") for s in ORDER]) for g in REGIONS]
    assert [float(out["Hölder"][g]) for g in REGIONS] == pytest.approx(means, rel=1e-12)
    assert float(out["Hölder"]["Avg"]) == pytest.approx(np.mean(means), rel=1e-12)


def test_missing_layout_groups_subsets_by_the_number_of_missing_modalities(tables, tmp_path):
    root, rows = tables["root"], tables["rows"]
    stem = tmp_path / "missing"
    compare.main(["--layout", "missing", f"full={root / 's1' / 'A'}", "-o", str(stem)])
    out = {r["region"]: r for r in read_csv(stem.with_suffix(".csv"))}
    sizes = {subset_name(s, BRATS): len(s) for s in all_subsets(4)}
    source = rows["s1", "A"]
    for region, metrics in [("TC", ["Dice_TC"]), ("mean", [f"Dice_{g}" for g in REGIONS])]:
        for missing in range(4):
            chosen = [s for s in ORDER if 4 - sizes[s] == missing]
            expected = np.mean([subset_mean(source, s, m) for s in chosen for m in metrics])
            assert float(out[region][f"{missing} missing"]) == pytest.approx(expected, rel=1e-12)
        expected_avg = np.mean([subset_mean(source, s, m) for s in ORDER for m in metrics])
        assert float(out[region]["Avg"]) == pytest.approx(expected_avg, rel=1e-12)


def _rows(seed: int, order: list[str], low: float, high: float, n_cases: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {"case": f"case_{c}", "subset": subset,
         **{m: float(rng.uniform(low, high) if m.startswith("Dice") else rng.uniform(0, 50))
            for m in METRICS}}
        for c in range(n_cases)
        for subset in order
    ]


def test_ceiling_tables_renders_the_gap_closed_from_evaluation_tables(tmp_path, capsys):
    """Two seeds of three models and two dedicated models: the share of the gap is computed from the rows."""
    rows, args = {}, []
    for model, (low, high) in {"ref": (0.0, 0.6), "vanilla": (0.0, 0.3), "new": (0.2, 0.8)}.items():
        for seed in (0, 1):
            rows[model, seed] = _rows(10 * seed + len(model), ORDER, low, high)
            folder = tmp_path / f"{model}_s{seed}"
            write_summary(summarise(rows[model, seed], ORDER, METRICS, modality_names=BRATS), folder)
            args += ["--model", model, str(seed), str(folder)]
    for subset, name in (("T1c", "T1c"), ("T1c+Fl", "T1cFl")):
        for seed in (0, 1):
            rows[subset, seed] = _rows(100 + seed + len(name), ["Full"], 0.9, 1.0)
            folder = tmp_path / f"dedicated_{name}_s{seed}"
            write_summary(summarise(rows[subset, seed], ["Full"], METRICS, modality_names=[name]), folder)
            args += ["--dedicated", subset, str(seed), str(folder / SUBSET_TABLE)]
    assert ceiling_tables.main([*args, "--reference", "ref", "--vanilla", "vanilla"]) == 0
    out = capsys.readouterr().out

    def seed_mean(key: str, subset: str) -> float:
        return float(np.mean([subset_mean(rows[key, seed], subset, "Dice_WT") for seed in (0, 1)]))

    covered = ["T1c", "T1c+Fl"]
    top = np.mean([seed_mean(s, "Full") for s in covered])
    ref, new, vanilla = (np.mean([seed_mean(m, s) for s in covered]) for m in ("ref", "new", "vanilla"))
    line = next(x for x in out.splitlines() if x.startswith("| WT | new |"))
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[2:5] == [f"{100 * new:.1f}", f"{100 * top:.1f}", f"{100 * (top - new):+.1f}"]
    assert cells[5] == f"{100 * (new - vanilla) / (top - vanilla):.0f} %"
    assert cells[6] == f"{100 * (new - ref) / (top - ref):.0f} %"
    assert "| T1c+Fl |" in out and "| Full (vanilla) |" in out


def test_ceiling_tables_refuses_a_subset_the_models_lack(tmp_path):
    folder = tmp_path / "m"
    write_summary(summarise(_rows(0, ORDER, 0, 1), ORDER, METRICS, modality_names=BRATS), folder)
    models = ["--model", "m", "0", str(folder), "--reference", "m", "--vanilla", "m"]
    with pytest.raises(SystemExit, match="not among the models' subsets"):
        ceiling_tables.main([*models, "--dedicated", "T1ce", "0", str(folder)])
    with pytest.raises(SystemExit, match="no --model table"):
        ceiling_tables.main([*models[:4], "--reference", "m", "--vanilla", "v",
                             "--dedicated", "T1c", "0", str(folder)])
    with pytest.raises(SystemExit, match="no subset_table.json"):
        ceiling_tables.main([*models, "--dedicated", "T1c", "0", str(tmp_path / "nowhere")])


@pytest.mark.parametrize("script", SCRIPTS + [EXPERIMENTS / "lib.sh"], ids=lambda p: p.name)
def test_shell_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


def _dry_run(script: Path) -> str:
    env = {"PATH": "/usr/bin:/bin", "DRY_RUN": "1"}  # no nnU-Net variables: placeholders are printed
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _known_trainers() -> set[str]:
    from nnunet_holder.trainers import ALL_TRAINERS

    return {t.__name__ for t in ALL_TRAINERS} | {"nnUNetTrainer"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_dry_run_trains_and_evaluates_only_known_trainers(script):
    out = _dry_run(script)
    commands = [line[2:] for line in out.splitlines() if line.startswith("+ ")]
    def trainers(prefix: str) -> list[str]:
        return [re.search(r"-tr (\S+)", c).group(1) for c in commands if c.startswith(prefix)]

    trained, evaluated = trainers("nnUNetv2_train "), trainers("nnunet-holder evaluate-subsets ")
    assert trained and set(trained) == set(evaluated)
    assert set(trained) <= _known_trainers()
    assert all(" 3d_fullres 0 " in c for c in commands if c.startswith("nnUNetv2_train "))
    assert commands[-1].startswith("python ") and "compare.py" in commands[-1]


def test_every_trainer_named_in_the_experiments_exists():
    text = "\n".join(p.read_text() for p in [*SCRIPTS, EXPERIMENTS / "README.md"])
    named = set(re.findall(r"\b(?:HolderMITrainer|nnUNetTrainer)\w*", text))
    assert "HolderMITrainer_paper" in named
    assert named <= _known_trainers(), sorted(named - _known_trainers())


def test_benchmark_plans_follow_nnunet_pooling_rule():
    assert common.stage_strides((128, 128, 128)) == [[1, 1, 1]] + [[2, 2, 2]] * 5
    assert common.stage_strides((128, 160, 112))[-1] == [2, 2, 1]  # 112 -> 7 voxels: no 6th pooling in z
    assert common.stage_strides((32, 32, 32)) == [[1, 1, 1]] + [[2, 2, 2]] * 3 + [[1, 1, 1]] * 2
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    config = PlansManager(common.brats_plans((64, 64, 64))).get_configuration("3d_fullres")
    kwargs = config.network_arch_init_kwargs
    assert config.patch_size == [64, 64, 64] and config.batch_size == 2
    assert kwargs["n_stages"] == 6 and kwargs["features_per_stage"] == [32, 64, 128, 256, 320, 320]
    assert common.parse_shape("128,160,112") == (128, 160, 112) and common.parse_shape("48") == (48, 48, 48)


def test_write_section_replaces_only_its_own_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    common.write_section("train_step", "## Train\nfirst\n", doc)
    common.write_section("inference", "## Inference\nkept\n", doc)
    common.write_section("train_step", "## Train\nsecond\n", doc)
    text = doc.read_text()
    assert text.startswith("# Benchmarks")
    assert "second" in text and "first" not in text and "kept" in text
    assert text.count("<!-- benchmark:train_step:begin -->") == 1
    assert text.index("## Train") < text.index("## Inference")


def test_machine_line_names_cpu_cores_torch_and_date():
    import torch

    line = common.machine_line(torch.device("cpu"))
    assert common.cpu_model() in line and "cores" in line and f"torch {torch.__version__}" in line
    assert re.search(r"date \d{4}-\d\d-\d\d", line)


def test_cpu_model_names_family_and_vector_extension():
    info = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: {model}\n"
        "model name\t: AMD EPYC\nflags\t\t: fpu sse2 {flags}\n"
    )
    assert common.cpu_model(info.format(model=1, flags="avx avx2")) == "AMD EPYC (family 25 model 1, AVX2)"
    assert common.cpu_model(info.format(model=17, flags="avx2 avx512f avx512bw")) == (
        "AMD EPYC (family 25 model 17, AVX-512)"
    )
    assert common.cpu_model("model name\t: Some CPU\n") == "Some CPU"


def test_ceiling400_tables_share_matches_the_recorded_comparisons_own():
    """The budget script recomputes the share of the `_fullHalf` -> ceiling gap from the per-seed
    values of the 200-epoch comparison record; `compare --dedicated` wrote its own share there."""
    tables = _load(EXPERIMENTS / "ceiling400_tables.py", "ceiling400_tables")
    recorded = json.loads((REPO / "docs" / "records" / "ceiling_200epochs_sample3.json").read_text())
    candidate, reference = tables.UNIFIED["sample3"], tables.UNIFIED["fullHalf"]
    shares = tables.gap_shares(tables.comparison_200(None), tables.comparison_200(candidate),
                               tables.comparison_200(reference), tables.COVERED)
    gaps = recorded["ceiling"]["gaps"][candidate]
    assert set(shares) == set(gaps)
    for region, share in shares.items():
        assert share == pytest.approx(gaps[region]["closed_of_reference_gap"], rel=1e-9)


def test_ceiling400_budget_gap_is_the_ceiling_minus_each_budget_over_its_seeds():
    """The budget table's gap is the ceiling's seed mean minus each budget's seed mean; a budget
    without records is a dash, not a zero."""
    tables = _load(EXPERIMENTS / "ceiling400_tables.py", "ceiling400_tables")
    ceiling = lambda subset, region: {0: 0.80, 1: 0.70}  # noqa: E731
    short = lambda subset, region: {0: 0.60, 1: 0.62, 2: 0.58}  # noqa: E731
    lines = tables._budget(ceiling, {"m 200": short, "m 800": lambda subset, region: {}})
    row = next(line for line in lines if line.startswith("| T1c alone | WT |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:] == ["75.0 ± 7.1", "60.0 ± 2.0", "–", "15.0", "–"]


def test_threshold_sweep_dice_matches_scikit_learn_at_every_threshold(tmp_path):
    """Each region's Dice at each threshold is scikit-learn's F1 of the same voxels, with the saved
    probabilities (C, z, y, x) aligned to the label read as (x, y, z)."""
    import nibabel as nib
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    labels, predictions = tmp_path / "labels", tmp_path / "pred"
    labels.mkdir()
    predictions.mkdir()
    expected: dict[str, dict[float, list[float]]] = {}
    for case in ("a", "b"):
        label = rng.integers(0, 4, size=(6, 5, 4)).astype(np.uint8)  # (x, y, z), as on disk
        nib.save(nib.Nifti1Image(label, np.eye(4)), labels / f"{case}.nii.gz")
        probabilities = rng.random((3, 4, 5, 6)).astype(np.float32)  # (C, z, y, x), as nnU-Net saves
        np.savez(predictions / f"{case}.npz", probabilities=probabilities)
        for r, (name, values) in enumerate(threshold_sweep.REGIONS.items()):
            truth = np.isin(label, values).transpose(2, 1, 0).ravel()
            for t in threshold_sweep.THRESHOLDS:
                score = f1_score(truth, probabilities[r].ravel() > t)
                expected.setdefault(name, {}).setdefault(t, []).append(score)
    result = threshold_sweep.sweep(predictions, labels)
    for name, by_t in expected.items():
        for t, scores in by_t.items():
            assert result[name][t] == pytest.approx(100 * np.mean(scores))
