"""`nnunet-holder demo`: the whole pipeline on synthetic BraTS-like data, HolderMITrainer vs baselines.

Synthetic cases (real MNI152 anatomy, 8 mm) are written in the BraTS 2020 raw layout, converted
with `convert-brats` (16 held-out test cases go to imagesTs), planned and preprocessed by the real
`nnUNetv2_plan_and_preprocess`, given the CPU experiment configuration `3d_small` (`plan-small`),
and `nnunet-holder compare` trains HolderMITrainer_demo, nnUNetTrainer_demo and
nnUNetTrainerModalityDropout_demo (one seed, the same schedule, side by side on the CPU's cores)
with the real `nnUNetv2_train` and evaluates every modality subset on the test set. `report.md`
holds the tables, the training curves with their plateau epochs, the figures and a verdict that
cites the seed-to-seed spread of the recorded 3-seed run of the same demo (docs/demo_record.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DATASET_ID = 990
DATASET_NAME = "SyntheticBraTS"
DATASET_FOLDER = f"Dataset{DATASET_ID}_{DATASET_NAME}"
BASELINE = "nnUNetTrainer_demo"
HOLDER = "HolderMITrainer_demo"
DROPOUT = "nnUNetTrainerModalityDropout_demo"
MULTI_SEED = Path(__file__).resolve().parents[1] / "docs" / "demo_record.json"
"""The 3-seed record of this demo, in a source checkout (the demo cites its spread)."""


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


def known_spread(path: Path = MULTI_SEED) -> float | None:
    """The largest seed-to-seed std of the region-mean Dice (missing-subset mean and full set) that the
    recorded multi-seed comparison measured, or None where the file is absent (an installed copy)."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    stds = [
        g["mean"]["std"]
        for model in data["models"].values()
        for g in model["groups"].values()
        if g["mean"]["std"] is not None
    ]
    return max(stds) if stds else None


def run_demo(args: argparse.Namespace) -> int:
    from nnunet_holder.compare.cli import run_comparison
    from nnunet_holder.conversion import convert_brats
    from nnunet_holder.small_config import SMALL, add_small_configuration
    from nnunet_holder.synthetic import generate_dataset
    from nnunet_holder.trainers.overrides import DEMO as SCHEDULE

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
    trainers = [HOLDER, BASELINE, DROPOUT]

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
    # -npfp: the fingerprint step's default is 8 spawned workers, each importing torch (~35 s here)
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
        f"{SCHEDULE['num_epochs']} epochs x {SCHEDULE['num_iterations_per_epoch']} iterations each",
        started,
    )
    os.environ["nnUNet_n_proc_DA"] = os.environ.get("nnUNet_n_proc_DA", "0" if args.device == "cpu" else "8")
    spread = known_spread()
    header = demo_header(args, spread)
    jobs = training_jobs(args.device, len(trainers))
    print(f"   {jobs} training(s) side by side")
    report = run_comparison(
        str(DATASET_ID),
        SMALL,
        trainers,
        [args.seed],
        root / "comparison",
        reference=HOLDER,
        device=args.device,
        known_spread=spread,
        header=header,
        jobs=jobs,
    )
    _step("5/5 report", started)
    text = report.read_text().replace("TOTAL_TIME", f"{(time.perf_counter() - started) / 60:.1f} min")
    report.write_text(text)
    (root / "report.md").write_text(text.replace("](", "](comparison/"))
    print(text.split("## Every subset")[0])
    print(f"report: {root / 'report.md'}  (total {time.perf_counter() - started:.0f} s)")
    return 0


def training_jobs(device: str, trainers: int) -> int:
    """Trainings side by side: on the CPU one per core (each with its share of the threads, so a
    2-core machine trains two models at once on one thread each, as the 3-seed record was made);
    on CUDA one per visible GPU."""
    if device == "cpu":
        from nnunet_holder.compare.runs import usable_cores

        return max(1, min(trainers, usable_cores()))
    import torch

    return max(1, min(trainers, torch.cuda.device_count()))


def demo_header(args: argparse.Namespace, spread: float | None) -> str:
    from nnunet_holder.trainers.overrides import DEMO as SCHEDULE

    cite = (
        f"The recorded 3-seed run of this demo (docs/demo_record.md) measured a "
        f"seed-to-seed spread of up to {100 * spread:.1f} Dice points; the verdict below treats smaller "
        "differences as none."
        if spread is not None
        else "No multi-seed record was found beside this installation "
        "(docs/demo_record.md in the repository): with one seed, a difference of a few points "
        "may be noise."
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
    p.add_argument("--cases", type=int, default=48, help="synthetic cases (default 48)")
    p.add_argument("--test-cases", type=int, default=16, help="held-out test cases (default 16)")
    p.add_argument("--spacing", type=float, default=8.0, help="voxel size in mm (default 8: CPU-sized)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training/inference device")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    p.set_defaults(func=run_demo)
