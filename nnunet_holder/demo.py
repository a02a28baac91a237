"""`nnunet-holder demo`: the whole pipeline on synthetic BraTS-like data, HolderMITrainer vs baselines.

Synthetic cases (real MNI152 anatomy, 8 mm) are written in the BraTS 2020 raw layout, converted
with `convert-brats` (16 held-out test cases go to imagesTs), planned and preprocessed by the real
`nnUNetv2_plan_and_preprocess`, given the CPU experiment configuration `3d_small` (`plan-small`),
and `nnunet-holder compare` trains HolderMITrainer_demo, nnUNetTrainer_demo and
nnUNetTrainerModalityDropout_fullHalf_demo (modality dropout that keeps the full set on half the
samples: uniform dropout's 200-epoch runs sometimes never learn enhancing tumour) with one seed, the
same schedule, side by side on the CPU's cores, with the real `nnUNetv2_train`, and evaluates every
modality subset on the test set. `report.md` holds the tables, the training curves with their
plateau epochs, the figures and a verdict that cites the seed-to-seed spread of the recorded 3-seed
run of the same demo and what twice its budget did to each model (docs/records/demo_record.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

DATASET_ID = 990
DATASET_NAME = "SyntheticBraTS"
DATASET_FOLDER = f"Dataset{DATASET_ID}_{DATASET_NAME}"
BASELINE = "nnUNetTrainer_demo"
HOLDER = "HolderMITrainer_demo"
DROPOUT = "nnUNetTrainerModalityDropout_fullHalf_demo"
RECORDED_SCALE = {"cases": 48, "spacing": 8.0, "test_cases": 16}
"""The demo's default data, the data of its multi-seed record."""
QUICK = {
    "trainers": [
        "HolderMITrainer_smoke",
        "nnUNetTrainer_smoke",
        "nnUNetTrainerModalityDropout_fullHalf_smoke",
    ],
    "reference": "HolderMITrainer_smoke",
}
"""`--quick`: the same path with the `_smoke` schedule (tests' 3 x 10 iterations)."""
RECORD_SUMMARY = Path(__file__).with_name("demo_record_summary.json")
"""What the demo's 3-seed record (docs/records/demo_record.md in the repository) measured, as data
the package owns: per demo trainer, the seed-to-seed std of the region-mean Dice (a fraction) on the
missing subsets and on the full set, and how many Dice points doubling the schedule moved their
seed means on the validation cases. tests/test_demo.py derives it from the record's data."""


def _step(title: str, started: float) -> None:
    print(f"\n=== [{time.perf_counter() - started:6.0f} s] {title}", flush=True)


def _env(root: Path) -> dict[str, str]:
    from nnunet_holder.trainer_path import trainer_path

    env = dict(os.environ)
    env.update(
        nnUNet_raw=str(root / "nnUNet_raw"),
        nnUNet_preprocessed=str(root / "nnUNet_preprocessed"),
        nnUNet_results=str(root / "nnUNet_results"),
        nnUNet_extTrainer=str(trainer_path()),
        nnUNet_def_n_proc=str(min(4, os.cpu_count() or 1)),
        PYTHONUNBUFFERED="1",
    )
    return env


def _run(args: list[str], env: dict[str, str], log: Path, show: tuple[str, ...] = ()) -> None:
    """Run an nnU-Net command; its output goes to `log`, lines containing `show` are echoed."""
    exe = Path(sys.executable).parent / args[0]
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [str(exe), *args[1:]],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        for line in proc.stdout:
            f.write(line)
            if any(s in line for s in show):
                print("   " + line.rstrip()[-150:], flush=True)
        if proc.wait() != 0:
            raise SystemExit(f"{' '.join(args)} failed (exit {proc.returncode}); see {log}")


def recorded_summary(
    trainers: Sequence[str], epochs: int, path: Path = RECORD_SUMMARY
) -> tuple[dict[str, dict[str, float]] | None, dict[str, dict[str, float]]]:
    """What the 3-seed record measured for `trainers` at a schedule of `epochs`: per trainer and group
    (missing-subset mean, full set), the seed-to-seed std of the region-mean Dice (None where the
    record has none of them) and what doubling the schedule moved it by, in Dice points. A record of
    another schedule counts for nothing."""
    summary = json.loads(path.read_text())
    if summary["num_epochs"] != epochs:
        return None, {}
    stds, gains = summary["seed_to_seed_std"], summary["doubling_gain_points"]
    spreads = {t: stds[t] for t in trainers if t in stds}
    return spreads or None, {t: gains[t] for t in trainers if t in gains}


def run_demo(args: argparse.Namespace) -> int:
    from nnunet_holder.compare.cli import run_comparison
    from nnunet_holder.conversion import convert_brats
    from nnunet_holder.small_config import SMALL, add_small_configuration
    from nnunet_holder.synthetic import generate_dataset
    from nnunet_holder.trainers.overrides import DEMO, SMOKE

    schedule = SMOKE if args.quick else DEMO
    started = time.perf_counter()
    root = Path(args.output).resolve()
    if root.exists() and any(root.iterdir()):
        if not args.overwrite:
            raise SystemExit(f"{root} is not empty; pass --overwrite to replace it")
        shutil.rmtree(root)
    (root / "logs").mkdir(parents=True)
    env = _env(root)
    os.environ.update(
        {k: env[k] for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer")}
    )
    trainers = QUICK["trainers"] if args.quick else [HOLDER, BASELINE, DROPOUT]
    reference = QUICK["reference"] if args.quick else HOLDER

    _step(
        f"1/5 synthetic BraTS-like data: {args.cases} cases at {args.spacing} mm (BraTS 2020 layout)", started
    )
    brats = generate_dataset(
        root / "brats_raw",
        args.cases,
        spacing=args.spacing,
        seed=args.seed,
        layout="brats2020",
        num_processes=2,
    )

    _step(f"2/5 convert-brats -> nnU-Net raw {DATASET_FOLDER} ({args.test_cases} test cases)", started)
    result = convert_brats(brats, DATASET_ID, DATASET_NAME, test_cases=args.test_cases, num_processes=2)
    print(f"   {len(result.training_cases)} training cases, {len(result.test_cases)} test cases")

    _step(f"3/5 nnUNetv2_plan_and_preprocess (3d_fullres) and plan-small ({SMALL})", started)
    # -npfp: the fingerprint step's default is 8 spawned workers, each importing torch
    _run(
        ["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "2", "-npfp", "2"],
        env,
        root / "logs" / "plan_and_preprocess.log",
    )
    plans_file = root / "nnUNet_preprocessed" / DATASET_FOLDER / "nnUNetPlans.json"
    print("   " + add_small_configuration(plans_file))
    config = json.loads(plans_file.read_text())["configurations"]["3d_fullres"]
    print(f"   patch size {config['patch_size']}, batch size {config['batch_size']}")

    _step(
        f"4/5 nnunet-holder compare: {', '.join(trainers)} on {SMALL}, seed {args.seed}, "
        f"{schedule['num_epochs']} epochs x {schedule['num_iterations_per_epoch']} iterations each",
        started,
    )
    os.environ["nnUNet_n_proc_DA"] = os.environ.get("nnUNet_n_proc_DA", "0" if args.device == "cpu" else "8")
    if args.quick:
        spreads, header = None, quick_header(args)
    else:
        spreads, gains = (
            recorded_summary(trainers, DEMO["num_epochs"]) if on_recorded_scale(args) else (None, {})
        )
        header = demo_header(args, spreads, gains)
    jobs = training_jobs(args.device, len(trainers))
    print(f"   {jobs} training(s) side by side")
    report = run_comparison(
        str(DATASET_ID),
        SMALL,
        trainers,
        [args.seed],
        root / "comparison",
        reference=reference,
        device=args.device,
        known_spreads=spreads,
        header=header,
        jobs=jobs,
    )
    _step("5/5 report", started)
    text = report.read_text().replace("TOTAL_TIME", f"{(time.perf_counter() - started) / 60:.1f} min")
    report.write_text(text)
    (root / "report.md").write_text(text.replace("](", "](comparison/"))
    result = json.loads((root / "comparison" / "comparison.json").read_text())
    print(closing_summary(result, spreads, args.quick))
    print(f"report: {root / 'report.md'}  (total {time.perf_counter() - started:.0f} s)")
    return 0


def closing_summary(result: Mapping, spreads: Mapping[str, Mapping[str, float]] | None, quick: bool) -> str:
    """What the demo prints at its end: per model the Dice on the missing-modality subsets and on
    the full set (`comparison.json`'s seed means), and one plain verdict per group: the best model,
    and whether its lead over the next is beyond the recorded seed-to-seed spread (`spreads`)."""
    from nnunet_holder.compare.stats import FULL, MISSING

    models = result["models"]
    lines = [
        "| model | missing subsets: WT / TC / ET (mean) | full set: WT / TC / ET (mean) |",
        "|---|---|---|",
    ]
    for name, entry in models.items():
        cells = []
        for group in (MISSING, FULL):
            values = entry["groups"][group]
            regions = " / ".join(f"{100 * values[r]['mean']:.1f}" for r in result["regions"])
            cells.append(f"{regions} ({100 * values['mean']['mean']:.1f})")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    if quick:
        return "\n".join(
            [
                *lines,
                "",
                "These models trained for a few iterations only: they are not trained enough to "
                "compare, and this run shows only that the whole path works here. `make demo` trains them "
                "for the demo's full schedule.",
            ]
        )
    verdicts = []
    for group, label in ((MISSING, "the missing-modality subsets"), (FULL, "the full set")):
        ranked = sorted(models, key=lambda m: models[m]["groups"][group]["mean"]["mean"], reverse=True)
        best, second = ranked[0], ranked[1]
        lead = 100 * (
            models[best]["groups"][group]["mean"]["mean"] - models[second]["groups"][group]["mean"]["mean"]
        )
        known = [spreads[m][group] for m in (best, second) if spreads and m in spreads]
        if len(known) < 2:
            judged = "with one seed and no recorded spread, a lead of a few points may be noise"
        elif lead > 100 * max(known):
            judged = f"beyond the recorded seed-to-seed spread of {100 * max(known):.1f}"
        else:
            judged = f"within the recorded seed-to-seed spread of {100 * max(known):.1f}: no difference"
        verdicts.append(f"On {label}, {best} leads {second} by {lead:.1f} Dice points, {judged}.")
    return "\n".join([*lines, "", "Verdict: " + " ".join(verdicts)])


def quick_header(args: argparse.Namespace) -> str:
    """The report's opening paragraph in `--quick` mode, which says what such a run can show."""
    from nnunet_holder.trainers.overrides import SMOKE

    return (
        "# nnunet-holder demo, quick mode: the whole path, models not trained enough to compare\n\n"
        f"Synthetic BraTS-like data ({args.cases} cases, {args.spacing} mm, data seed {args.seed}), "
        f"{args.test_cases} held-out test cases, configuration `3d_small`, every model trained for "
        f"{SMOKE['num_epochs']} epochs × {SMOKE['num_iterations_per_epoch']} iterations (the `_smoke` "
        f"trainers), device `{args.device}`, total time TOTAL_TIME. **These models are not trained "
        "enough to compare: no difference below means anything about the methods.** `make demo` runs "
        "the same path at the demo's schedule."
    )


def training_jobs(device: str, trainers: int) -> int:
    """Trainings side by side: on the CPU one per core (each with its share of the threads, so a
    2-core machine trains two models at once on one thread each, as the 3-seed record was made);
    on CUDA one per visible GPU."""
    if device == "cpu":
        from nnunet_holder.compare.runs import usable_cores

        return max(1, min(trainers, usable_cores()))
    import torch

    return max(1, min(trainers, torch.cuda.device_count()))


def on_recorded_scale(args: argparse.Namespace) -> bool:
    """Whether the demo runs on the data of its multi-seed record: the default cases, spacing and
    test cases (the record's spread says nothing about another scale)."""
    return all(getattr(args, k) == v for k, v in RECORDED_SCALE.items())


def demo_header(
    args: argparse.Namespace,
    spreads: Mapping[str, Mapping[str, float]] | None,
    gains: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    """The report's opening paragraph: the data, the schedule, and what the recorded multi-seed run
    says about reading one seed (`spreads`, from `recorded_spreads`) and about the schedule (`gains`,
    per trainer from `recorded_doubling_gain`, judged by the curves' plateau tolerance)."""
    from nnunet_holder.compare.curves import PLATEAU_TOLERANCE
    from nnunet_holder.compare.stats import FULL, MISSING
    from nnunet_holder.trainers.overrides import DEMO as SCHEDULE

    if spreads:
        stds = "; ".join(
            f"{model} {100 * s[MISSING]:.1f} (missing subsets) and {100 * s[FULL]:.1f} (full set)"
            for model, s in spreads.items()
        )
        cite = (
            "The recorded 3-seed run of this demo (docs/records/demo_record.md) measured these seed-to-seed "
            f"stds of the region-mean Dice, in Dice points: {stds}. The verdict below judges each "
            "difference by the larger std of the two models compared and treats a smaller difference "
            "as none."
        )
        if gains:
            tolerance, doubled = 100 * PLATEAU_TOLERANCE, 2 * SCHEDULE["num_epochs"]
            moved = "; ".join(f"{model} {g[MISSING]:+.1f} and {g[FULL]:+.1f}" for model, g in gains.items())
            still = [model for model, g in gains.items() if max(abs(v) for v in g.values()) >= tolerance]
            cite += (
                f" Twice this budget ({doubled} epochs, the same seeds, validation "
                "cases; docs/records/demo_record.md) moved the seed mean of the region-mean Dice on the "
                f"missing subsets and the full set by: {moved} points. "
            )
            if still:
                cite += (
                    f"Not stopped learning at this budget (moved by {tolerance:.0f} points or more, the "
                    f"tolerance by which a curve counts as converged): {', '.join(still)}. Read a "
                    "verdict that involves it as one about this budget, not about the converged "
                    f"model (docs/records/demo_record.md holds the {doubled}-epoch comparison to decide by)."
                )
            else:
                cite += (
                    f"Each moved less than {tolerance:.0f} points, the tolerance by which a curve counts "
                    "as converged: this budget reaches every model's plateau."
                )
    else:
        cite = (
            "No multi-seed record of this scale was found (docs/records/demo_record.md in the repository "
            "holds the default data only): with one seed, a difference of "
            "a few points may be noise."
        )
    return (
        "# nnunet-holder demo: HolderMITrainer vs nnU-Net on every missing-modality subset\n\n"
        f"Synthetic BraTS-like data ({args.cases} cases, {args.spacing} mm, data seed {args.seed}), "
        f"{args.test_cases} held-out test cases, configuration `3d_small` (`nnunet-holder plan-small`), "
        f"every model trained with the same schedule ({SCHEDULE['num_epochs']} epochs × "
        f"{SCHEDULE['num_iterations_per_epoch']} iterations, the `_demo` trainers) on fold 0 with "
        f"`nnUNet_seed={args.seed}`, device `{args.device}`, total time TOTAL_TIME. Test-time mirroring "
        "is off (speed). Vanilla nnU-Net and modality dropout get zero-filled channels for missing "
        "modalities; "
        "HolderMITrainer runs only the available ones. One seed per model. " + cite
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="end-to-end demo on synthetic data (HolderMITrainer vs nnU-Net)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--output", default="demo_output", help="working and report folder (default: demo_output)")
    cases, spacing, test_cases = (RECORDED_SCALE[k] for k in ("cases", "spacing", "test_cases"))
    p.add_argument("--cases", type=int, default=cases, help=f"synthetic cases (default {cases})")
    p.add_argument(
        "--test-cases", type=int, default=test_cases, help=f"held-out test cases (default {test_cases})"
    )
    p.add_argument(
        "--spacing", type=float, default=spacing, help=f"voxel size in mm (default {spacing:g}: CPU-sized)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training/inference device")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    p.add_argument(
        "--quick",
        action="store_true",
        help="the whole path in a few minutes (_smoke schedule): models not trained enough to compare",
    )
    p.set_defaults(func=run_demo)
