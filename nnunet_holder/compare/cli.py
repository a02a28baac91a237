"""`nnunet-holder compare -d D -c C -tr T1 T2 ... --seeds 0 1 2 -o OUT`: a multi-seed comparison.

Trains every (trainer, seed) not yet trained with the real `nnUNetv2_train` (seeded through
`nnUNet_seed`, one results folder per seed under OUT/models), evaluates every modality subset on
the dataset's test cases (imagesTs/labelsTs; HolderMITrainer models run the available
modalities, the others get zero-filled channels), and writes OUT/comparison.{md,csv,json} and a
heatmap. Re-running the same command continues an interrupted comparison; adding trainers or
seeds to it trains only the new runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nnunet_holder.compare.curves import Curves
from nnunet_holder.compare.stats import KnownSpreads


def run_comparison(
    dataset: str,
    configuration: str,
    trainers: list[str],
    seeds: list[int],
    out: Path,
    reference: str | None = None,
    plans: str = "nnUNetPlans",
    fold: int = 0,
    device: str = "cpu",
    mirroring: bool = False,
    known_spreads: KnownSpreads | None = None,
    header: str | None = None,
    jobs: int = 1,
) -> Path:
    """Train, evaluate and report; returns the report's path. `reference` defaults to the first trainer."""
    from nnunetv2.paths import nnUNet_raw
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    from nnunet_holder.compare import runs as R
    from nnunet_holder.compare.curves import read_curves
    from nnunet_holder.compare.report import write_report

    if jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {jobs}")
    if len(set(trainers)) != len(trainers) or len(set(seeds)) != len(seeds):
        raise SystemExit("each trainer and each seed may be given once")
    reference = reference or trainers[0]
    if reference not in trainers:
        raise SystemExit(f"--reference {reference} is not one of the trainers {trainers}")
    dataset_folder = maybe_convert_to_dataset_name(dataset)
    raw = Path(nnUNet_raw) / dataset_folder
    images, labels = raw / "imagesTs", raw / "labelsTs"
    if not labels.is_dir():
        raise SystemExit(
            f"{labels}: the comparison evaluates on the dataset's test cases (imagesTs and labelsTs)"
        )
    env = R.nnunet_env()
    grid = [R.Run(t, s, out, dataset_folder, plans, configuration, fold) for s in seeds for t in trainers]
    todo = sum(not r.trained for r in grid)
    print(f"{len(grid) - todo} of {len(grid)} runs trained, {todo} to train ({jobs} at a time)", flush=True)
    R.train_all(grid, dataset, device, env, jobs, show=("Epoch ", "Pseudo dice", "mean over"))
    results: dict = {t: {} for t in trainers}
    curves: dict[str, dict[int, Curves]] = {t: {} for t in trainers}
    for i, run in enumerate(grid, 1):
        if not run.evaluated:
            print(
                f"[{i}/{len(grid)}] evaluating {run.trainer} seed {run.seed} on every modality subset",
                flush=True,
            )
            R.evaluate(run, images, labels, device, mirroring)
        results[run.trainer][run.seed] = R.load_evaluation(run)
        curves[run.trainer][run.seed] = read_curves(run.fold_folder / "checkpoint_final.pth")
    first = next(iter(results[reference].values()))
    meta = {
        "dataset": dataset_folder,
        "configuration": configuration,
        "plans": plans,
        "fold": fold,
        "trainers": trainers,
        "seeds": seeds,
        "test_cases": first.stats[first.order[0]][first.metrics[0]].n,
        "mirroring": mirroring,
    }
    header = header or (
        f"# Comparison on {dataset_folder}, configuration {configuration}, fold {fold}\n\n"
        f"Trainers {', '.join(trainers)}; seeds {', '.join(map(str, seeds))}; {meta['test_cases']} test "
        f"cases (imagesTs); test-time mirroring {'on' if mirroring else 'off'}. Every model is trained with "
        "the schedule its trainer names; a difference within the seed-to-seed spread is reported as "
        "no difference."
    )
    progress = [r.fold_folder / "progress.png" for r in grid if r.seed == seeds[0]]
    figures = []
    for png in progress:
        if png.is_file():
            target = out / "figures" / f"{png.parent.parent.name.split('__')[0]}_progress.png"
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(png.read_bytes())
            figures.append(target)
    report = write_report(results, reference, curves, out, header, meta, known_spreads, figures)
    print(f"report: {report}")
    return report


SHARED_SETTINGS: tuple[str, ...] = ("d", "c", "p", "f", "mirroring")
"""The `compare` arguments one output folder is bound to (trainers and seeds can grow)."""


def _run(args: argparse.Namespace) -> int:
    out = Path(args.output).resolve()
    meta_file = out / "compare_command.json"
    # what every stored run and evaluation depends on; trainers and seeds may be added or left
    # out, since each (trainer, seed) has its own model and evaluation folder
    settings = {k: getattr(args, k) for k in SHARED_SETTINGS}
    if meta_file.is_file():
        stored = json.loads(meta_file.read_text())
        changed = [k for k in SHARED_SETTINGS if stored.get(k) != settings[k]]
        if changed:
            raise SystemExit(
                f"{out} holds a comparison with other settings ({', '.join(changed)}: {meta_file}); "
                "use another --output folder"
            )
    out.mkdir(parents=True, exist_ok=True)
    meta_file.write_text(json.dumps(settings, indent=2))
    run_comparison(
        args.d, args.c, args.tr, args.seeds, out, args.reference, args.p, args.f, args.device, args.mirroring,
        jobs=args.jobs,
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="train trainers × seeds, evaluate every modality subset, report mean ± std and the verdict",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("-d", required=True, help="dataset name or id")
    p.add_argument("-c", required=True, help="configuration, e.g. 3d_small (see plan-small) or 3d_fullres")
    p.add_argument("-tr", nargs="+", required=True, help="trainers to compare")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--reference", help="model the others are compared with (default: the first -tr)")
    p.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    p.add_argument("-f", type=int, default=0, help="fold each model trains on (default 0)")
    p.add_argument("-o", "--output", required=True, help="comparison folder (models, evaluations, report)")
    p.add_argument("-device", default="cpu", choices=["cpu", "cuda"], help="device (default cpu)")
    p.add_argument(
        "--jobs", type=int, default=1,
        help="trainings side by side (default 1). On the CPU each gets cores/JOBS torch threads "
        "(nnUNet_torch_threads; a thread count other than a lone run's changes its float rounding); "
        "on CUDA each gets one GPU of CUDA_VISIBLE_DEVICES, round robin",
    )
    p.add_argument(
        "--mirroring", action="store_true", help="test-time mirroring in the evaluation (default off)"
    )
    p.set_defaults(func=_run)
