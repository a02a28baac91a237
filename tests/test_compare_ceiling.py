"""The ceiling arm of `compare`: subset parsing, derived channel-subset datasets, the gap arithmetic,
trainer-name resolution before training, and the re-evaluation of a run whose evaluation failed.

The derived datasets are made from the tiny dataset (real nnU-Net planning of the source, real
`nnUNetv2_preprocess` of the derived ones); the report's gaps are checked against a direct
computation on synthetic per-seed summaries.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from nnunet_holder.brats import MODALITIES
from nnunet_holder.compare.ceiling import Ceiling, ceiling_json, ceiling_markdown, ceiling_result
from nnunet_holder.compare.dedicated import (
    RECORD_KEY,
    derive_subset_dataset,
    find_derived,
    free_dataset_id,
    parse_subsets,
    subset_of,
    subset_plans,
)
from nnunet_holder.compare.runs import Run
from nnunet_holder.compare.stats import MEAN_REGION, metric_result
from nnunet_holder.evaluate.tables import paper_subset_order, summarise
from nnunet_holder.file_names import SUBSET_TABLE, TIMING

BRATS_CHANNELS = {str(i): m for i, m in enumerate(MODALITIES)}


def test_subsets_parse_by_name_index_and_complement_in_the_papers_order():
    assert parse_subsets(["FLAIR", "t1c+flair", "~T1", "0"], BRATS_CHANNELS) == [
        (3,),
        (0,),
        (1, 3),
        (1, 2, 3),
    ]
    assert parse_subsets(["1,3"], BRATS_CHANNELS) == [(1, 3)]
    every = parse_subsets([], BRATS_CHANNELS)
    assert len(every) == 14 and (0, 1, 2, 3) not in every
    assert parse_subsets(["all"], BRATS_CHANNELS) == every


@pytest.mark.parametrize("spec", ["T1+T1c+T2+FLAIR", "~", "T7"])
def test_the_full_set_an_empty_and_an_unknown_subset_are_refused(spec):
    with pytest.raises(SystemExit):
        parse_subsets([spec], BRATS_CHANNELS)


def test_subset_plans_keep_the_kept_channels_entries_in_the_new_order():
    plans = {
        "dataset_name": "Dataset005_X",
        "foreground_intensity_properties_per_channel": {str(i): {"mean": i} for i in range(4)},
        "configurations": {
            "3d_fullres": {"normalization_schemes": ["A", "B", "C", "D"], "use_mask_for_norm": [0, 1, 0, 1]},
            "3d_small": {"inherits_from": "3d_fullres"},
        },
    }
    out = subset_plans(plans, (1, 3), "Dataset900_X_onlyT1cFl")
    assert out["dataset_name"] == "Dataset900_X_onlyT1cFl"
    assert out["foreground_intensity_properties_per_channel"] == {"0": {"mean": 1}, "1": {"mean": 3}}
    assert out["configurations"]["3d_fullres"]["normalization_schemes"] == ["B", "D"]
    assert out["configurations"]["3d_fullres"]["use_mask_for_norm"] == [1, 1]
    assert out["configurations"]["3d_small"] == {"inherits_from": "3d_fullres"}
    assert plans["configurations"]["3d_fullres"]["normalization_schemes"] == ["A", "B", "C", "D"]


def test_the_first_free_id_skips_every_nnunet_folder(tmp_path):
    for root, name in (("raw", "Dataset900_A"), ("pre", "Dataset901_B"), ("res", "Dataset903_C")):
        (tmp_path / root / name).mkdir(parents=True)
    roots = [str(tmp_path / r) for r in ("raw", "pre", "res")]
    assert free_dataset_id(900, roots) == 902
    assert free_dataset_id(903, roots) == 904
    with pytest.raises(SystemExit, match="no free dataset id"):
        free_dataset_id(1000, roots)


@pytest.fixture
def derived(in_nnunet_env):
    """T1c+FLAIR of the tiny dataset, derived once (and again, to see it reused)."""
    source = in_nnunet_env["name"]
    name = derive_subset_dataset(source, (1, 3), "nnUNetPlans", "3d_fullres", first_id=950, num_processes=1)
    again = derive_subset_dataset(source, (1, 3), "nnUNetPlans", "3d_fullres", first_id=950, num_processes=1)
    return source, name, again


def test_a_derived_dataset_holds_exactly_the_subsets_channels_the_labels_and_the_split(derived):
    source, name, again = derived
    raw, pre = Path(os.environ["nnUNet_raw"]), Path(os.environ["nnUNet_preprocessed"])
    assert again == name and name.startswith("Dataset95") and name.endswith("_onlyT1cFl")
    # (0, 1, 2): a subset no test derives (test_compare_runs and test_compare_workers derive T1c alone)
    assert find_derived(source, (1, 3), raw) == name and find_derived(source, (0, 1, 2), raw) is None
    record = json.loads((raw / name / "dataset.json").read_text())
    assert record[RECORD_KEY] == {"source": source, "channels": [1, 3]}
    source_json = json.loads((raw / source / "dataset.json").read_text())
    assert record["channel_names"] == {
        "0": source_json["channel_names"]["1"],
        "1": source_json["channel_names"]["3"],
    }
    assert record["labels"] == source_json["labels"]
    assert subset_of(name, ["T1", "T1c", "T2", "Fl"]) == "T1c+Fl"
    for folder in ("imagesTr", "imagesTs"):
        cases = sorted({p.name[:-12] for p in (raw / source / folder).glob("*_0000.nii.gz")})
        files = sorted(p.name for p in (raw / name / folder).iterdir())
        assert files == sorted(f"{c}_{k:04d}.nii.gz" for c in cases for k in (0, 1))
        for case in cases:  # the same bytes, by hard link: the source is only read
            for new, old in ((0, 1), (1, 3)):
                a, b = (
                    raw / name / folder / f"{case}_{new:04d}.nii.gz",
                    raw / source / folder / f"{case}_{old:04d}.nii.gz",
                )
                assert a.read_bytes() == b.read_bytes()
    for folder in ("labelsTr", "labelsTs"):
        src = sorted(p.name for p in (raw / source / folder).iterdir())
        assert sorted(p.name for p in (raw / name / folder).iterdir()) == src
    splits = json.loads((pre / name / "splits_final.json").read_text())
    source_splits = pre / source / "splits_final.json"
    if source_splits.is_file():
        assert splits == json.loads(source_splits.read_text())
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    train_cases = sorted(p.name[:-7] for p in (raw / source / "labelsTr").iterdir())
    assert splits == generate_crossval_split(train_cases, 12345, 5)
    data = sorted(p.name for p in (pre / name / "nnUNetPlans_3d_fullres").glob("*.pkl"))
    assert data == [f"{c}.pkl" for c in train_cases]
    import blosc2

    first = train_cases[0]
    array = blosc2.open(str(pre / name / "nnUNetPlans_3d_fullres" / f"{first}.b2nd"), mode="r")
    assert array.shape[0] == 2  # two channels preprocessed


REGIONS = ("WT", "TC", "ET")


def _summary(order: list[str], dice: dict[str, float], names):
    rows = [
        {"case": f"c{c}", "subset": s, **{f"Dice_{r}": dice.get(s, 0.5) + 0.01 * c for r in REGIONS}}
        for c in range(2)
        for s in order
    ]
    return summarise(rows, order, [f"Dice_{r}" for r in REGIONS], modality_names=names)


def test_the_gap_to_the_ceiling_and_the_closed_fractions_equal_a_direct_computation():
    names = ("T1", "T1c", "T2", "Fl")
    order = paper_subset_order(names)
    rng = np.random.default_rng(0)
    models = {
        m: {s: _summary(order, {o: float(rng.uniform(0.2, 0.8)) for o in order}, names) for s in (0, 1)}
        for m in ("drop", "vanilla", "holder")
    }
    dedicated = {
        sub: {s: _summary(["Full"], {"Full": float(rng.uniform(0.8, 0.95))}, (sub,)) for s in (0, 1)}
        for sub in ("T1c", "Fl")
    }
    ceiling = Ceiling(trainer="vanilla", subsets=dedicated, datasets={"T1c": "D1", "Fl": "D2"})
    assert ceiling.covered(order) == ["Fl", "T1c", "Full"]
    result = ceiling_result(ceiling, metric_result(models, "drop"))
    table = result.gaps

    def mean(by_seed, subset):
        return np.mean(
            [np.mean([by_seed[s].stats[subset][f"Dice_{r}"].mean for r in REGIONS]) for s in (0, 1)]
        )

    top = np.mean([mean(dedicated[s], "Full") for s in ("T1c", "Fl")])
    value = {m: np.mean([mean(models[m], s) for s in ("T1c", "Fl")]) for m in models}
    for m in models:
        g = table[m][MEAN_REGION]
        assert g["ceiling"] == pytest.approx(top) and g["dice"] == pytest.approx(value[m])
        assert g["gap"] == pytest.approx(top - value[m])
        assert g["closed_of_vanilla_gap"] == pytest.approx(
            (value[m] - value["vanilla"]) / (top - value["vanilla"])
        )
        assert g["closed_of_reference_gap"] == pytest.approx(
            (value[m] - value["drop"]) / (top - value["drop"])
        )
    assert table["vanilla"][MEAN_REGION]["closed_of_vanilla_gap"] == pytest.approx(0)
    md = ceiling_markdown(result)
    assert "| Full (vanilla) |" in md and "mean of the 2 missing-modality subsets above" in md
    data = json.loads(json.dumps(ceiling_json(result)))
    assert data["subsets"]["Full"][MEAN_REGION] == {
        str(s): pytest.approx(
            np.mean([models["vanilla"][s].stats["Full"][f"Dice_{r}"].mean for r in REGIONS])
        )
        for s in (0, 1)
    }


def test_no_gap_gives_no_fraction():
    from nnunet_holder.compare.ceiling import _fraction

    assert math.isnan(_fraction(0.7, 0.8, 0.8)) and _fraction(0.9, 0.5, 0.9) == pytest.approx(1)


def test_a_run_whose_evaluation_had_failed_cases_is_not_evaluated(tmp_path):
    run = Run("T", 0, tmp_path, "Dataset001_X", "nnUNetPlans", "3d_fullres", 0)
    run.evaluation_folder.mkdir(parents=True)
    (run.evaluation_folder / SUBSET_TABLE).write_text(json.dumps({"metrics": ["Dice_WT", "HD95_WT"]}))
    (run.evaluation_folder / TIMING).write_text(json.dumps({"failures": ["case_7: bad file"]}))
    assert not run.evaluated
    (run.evaluation_folder / TIMING).write_text(json.dumps({"failures": []}))
    assert run.evaluated


def test_a_misspelt_trainer_is_refused_with_the_closest_names_before_anything_trains(in_nnunet_env, tmp_path):
    from nnunet_holder.compare.cli import run_comparison

    out = tmp_path / "cmp"
    with pytest.raises(SystemExit) as refused:
        run_comparison(
            in_nnunet_env["name"],
            "3d_fullres",
            ["nnUNetTrainer_smoke", "nnUNetTrainerModalityDropot_smoke"],
            [0],
            out,
        )
    message = str(refused.value)
    assert "nothing was trained" in message and "'nnUNetTrainerModalityDropot_smoke'" in message
    assert "nnUNetTrainerModalityDropout_smoke" in message
    assert not (out / "models").exists()


def test_a_comparison_into_a_folder_that_does_not_exist_yet_runs_and_reports_its_failed_run(
    in_nnunet_env, tmp_path
):
    """The demo calls run_comparison with a new output folder; the worker's status file went into
    it before anything created it (FileNotFoundError). A configuration the plans lack makes the
    training fail at once, so the run is reported as failed, in a status file that exists."""
    from nnunet_holder.compare.cli import run_comparison

    out = tmp_path / "new" / "cmp"
    with pytest.raises(SystemExit) as failed:
        run_comparison(in_nnunet_env["name"], "3d_no_such_configuration", ["nnUNetTrainer_smoke"], [0], out)
    assert "nnUNetTrainer_smoke" in str(failed.value)
    assert "failed" in (out / "status.md").read_text()
