"""`nnunet-holder compare -d D -c C -tr T1 T2 ... --seeds 0 1 2 -o OUT`: a multi-seed comparison.

Trains every (trainer, seed) not yet trained with the real `nnUNetv2_train` (seeded through
`nnUNet_seed`, one results folder per seed under OUT/models), evaluates every modality subset on
the dataset's test cases (imagesTs/labelsTs; HolderMITrainer models run the available
modalities, the others get zero-filled channels), and writes OUT/comparison.{md,csv,json} and a
heatmap. Re-running the same command continues an interrupted comparison; adding trainers or
seeds to it trains only the new runs.

With `--dedicated`, the comparison also measures the ceiling: for each listed modality subset, a
vanilla nnU-Net (`--dedicated-trainer`, on the same schedule as the compared trainers) trained on a
derived dataset that holds only that subset's channels, same cases, labels, split and test cases,
each evaluated on its own subset; the full set's ceiling is the same trainer on the dataset itself.
The report adds the ceiling and every model's gap to it.

Several workers share one comparison: run the same command N times (a Slurm job array, or on
machines that share the output folder) and each worker claims the next run nobody holds, trains
and evaluates it, and takes the next; a run held or finished by one worker is never trained by
another. A dead worker's run is taken over (with `--c`, from its latest checkpoint) by the next
worker: at once on the same host, after `--claim-timeout` from another host, or at once with
`--reclaim`. The last worker to finish writes the report; OUT/status.md shows every run's state,
epoch, pseudo-Dice and ETA while they train.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from nnunet_holder.compare.claims import DEFAULT_TIMEOUT, Takeover
from nnunet_holder.compare.curves import Curves
from nnunet_holder.compare.stats import KnownSpreads
from nnunet_holder.evaluate.metric_sets import DEFAULT_METRIC_SETS, METRIC_SETS, check_metric_sets
from nnunet_holder.evaluate.tables import case_counts
from nnunet_holder.file_names import COMPARE_COMMAND, STATUS_MD
from nnunet_holder.parts import atomic_write


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
    dedicated: list[str] | None = None,
    dedicated_trainer: str = "nnUNetTrainer",
    dedicated_first_id: int | None = None,
    takeover: Takeover | None = None,
    metrics: Sequence[str] = DEFAULT_METRIC_SETS,
) -> Path | None:
    """Work on the comparison's runs (all of them, or this worker's share), then report.

    Returns the report's path; None where runs are left that other live workers hold (the last of
    them writes the report). Where runs are missing and nobody works on them (they failed), the
    report covers the seeds whose every run is evaluated, names each missing run, and this raises.
    `reference` defaults to the first trainer; `dedicated` (subset specs, see `parse_subsets`; an
    empty list is every subset) adds the ceiling arm; `takeover` sets when another worker's claim
    on a run is taken over (`claims.py`); `metrics` are the evaluation's metric sets, each one's
    overlap metric reported (the first in the main tables).
    """
    from nnunetv2.paths import nnUNet_raw
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    from nnunet_holder.compare import runs as R
    from nnunet_holder.compare.claims import Claims
    from nnunet_holder.compare.lookup import resolve_trainers, schedule
    from nnunet_holder.compare.progress import run_status
    from nnunet_holder.compare.work import Worker

    if jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {jobs}")
    if len(set(trainers)) != len(trainers) or len(set(seeds)) != len(seeds):
        raise SystemExit("each trainer and each seed may be given once")
    reference = reference or trainers[0]
    if reference not in trainers:
        raise SystemExit(f"--reference {reference} is not one of the trainers {trainers}")
    takeover = takeover or Takeover()
    try:
        metrics = check_metric_sets(metrics)
    except ValueError as e:
        raise SystemExit(f"--metrics: {e}") from None
    if dedicated is not None and "legacy" not in metrics:
        raise SystemExit("--dedicated: the ceiling is measured on the legacy Dice; add legacy to --metrics")
    dataset_folder = maybe_convert_to_dataset_name(dataset)
    raw = Path(nnUNet_raw) / dataset_folder
    labels = raw / "labelsTs"
    if not labels.is_dir():
        raise SystemExit(
            f"{labels}: the comparison evaluates on the dataset's test cases (imagesTs and labelsTs)"
        )
    env = R.nnunet_env()
    if dedicated is not None and dedicated_trainer not in trainers:
        trainers = [*trainers, dedicated_trainer]  # the full set's ceiling, and vanilla's zero-filled row
    classes = resolve_trainers(trainers, env)
    budgets = {t: schedule(c) for t, c in classes.items()}
    if len({b for b in budgets.values() if b is not None}) > 1:
        print(
            "warning: the trainers have different schedules (epochs x iterations): "
            + ", ".join(f"{t} {b[0]}x{b[1]}" for t, b in budgets.items() if b is not None)
            + "; a comparison is fair only at the same budget",
            flush=True,
        )
    grid = [
        R.Run(t, s, out, dataset_folder, plans, configuration, fold, metrics=metrics)
        for s in seeds
        for t in trainers
    ]
    ceiling_runs = []
    if dedicated is not None:
        ceiling_runs = _dedicated_runs(
            dataset_folder, raw, dedicated, dedicated_trainer, seeds, out, plans, configuration, fold, env,
            dedicated_first_id, metrics,
        )
    everything = grid + ceiling_runs
    todo = sum(not r.evaluated for r in everything)
    print(
        f"{len(everything) - todo} of {len(everything)} runs trained and evaluated, {todo} to do "
        f"({jobs} at a time in this worker; progress of every worker: {out / STATUS_MD})",
        flush=True,
    )
    out.mkdir(parents=True, exist_ok=True)  # a caller other than the CLI (the demo) passes a new folder
    failures = Worker(everything, out, device, env, mirroring, takeover, jobs).run()
    missing = [r for r in everything if not r.evaluated]
    held = [r for r in missing if Claims(r.claims_folder).held(takeover)]
    if held:
        print(
            f"{len(missing)} runs not finished, {len(held)} of them held by other workers "
            f"({', '.join(f'{r.name} seed {r.seed}' for r in held)}); the last worker to finish writes the "
            f"report. Progress: {out / STATUS_MD}",
            flush=True,
        )
        if failures:
            raise SystemExit("\n".join(failures))
        return None
    complete = [s for s in seeds if all(r.evaluated for r in everything if r.seed == s)]
    lines = [f"{r.name} seed {r.seed}: {run_status(r, takeover)['state']}" for r in missing]
    report = _report(
        [r for r in grid if r.seed in complete], [r for r in ceiling_runs if r.seed in complete], trainers,
        complete, reference, out, dataset_folder, configuration, plans, fold, mirroring, known_spreads,
        header, dedicated_trainer if dedicated is not None else None, lines, R.overlap_kinds(metrics),
    )
    if missing:
        raise SystemExit(
            f"the comparison is incomplete: {len(missing)} of {len(everything)} runs missing, named in "
            f"{report} (re-run the command to retry them):\n" + "\n".join(lines)
        )
    print(f"report: {report}")
    return report


def _report(
    grid: list,
    ceiling_runs: list,
    trainers: list[str],
    seeds: list[int],
    reference: str,
    out: Path,
    dataset_folder: str,
    configuration: str,
    plans: str,
    fold: int,
    mirroring: bool,
    known_spreads: KnownSpreads | None,
    header: str | None,
    dedicated_trainer: str | None,
    missing: list[str],
    kinds: list[str],
) -> Path:
    """The report of the runs of `seeds` (the seeds whose every run is evaluated), naming `missing`."""
    from nnunet_holder.compare import runs as R
    from nnunet_holder.compare.curves import read_curves
    from nnunet_holder.compare.report import write_incomplete, write_report

    meta = {
        "dataset": dataset_folder,
        "configuration": configuration,
        "plans": plans,
        "fold": fold,
        "trainers": trainers,
        "seeds": seeds,
        "mirroring": mirroring,
    }
    if not seeds:
        title = header or f"# Comparison on {dataset_folder}, configuration {configuration}, fold {fold}"
        return write_incomplete(out, title, meta, missing)
    results: dict = {t: {} for t in trainers}
    curves: dict[str, dict[int, Curves]] = {t: {} for t in trainers}
    for run in grid:
        results[run.trainer][run.seed] = R.load_evaluation(run)
        curves[run.trainer][run.seed] = read_curves(run.fold_folder / "checkpoint_final.pth")
    first = next(iter(results[reference].values()))
    meta["test_cases"] = max(case_counts(first))  # the most of any subset: incomplete cases lack some
    header = header or (
        f"# Comparison on {dataset_folder}, configuration {configuration}, fold {fold}\n\n"
        f"Trainers {', '.join(trainers)}; seeds {', '.join(map(str, seeds))}; {meta['test_cases']} test "
        f"cases (imagesTs); test-time mirroring {'on' if mirroring else 'off'}. Every model is trained with "
        "the schedule its trainer names; a difference within the seed-to-seed spread is reported as "
        "no difference."
    )
    figures = []
    for run in grid:
        png = run.fold_folder / "progress.png"
        if run.seed == seeds[0] and png.is_file():
            target = out / "figures" / f"{run.trainer}_progress.png"
            target.parent.mkdir(exist_ok=True)
            temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(png, temp)
            os.replace(temp, target)  # another worker may write the same figure at the same time
            figures.append(target)
    arm = None
    if dedicated_trainer is not None:
        from nnunet_holder.compare.ceiling import Ceiling

        ceiling: dict = {}
        for run in ceiling_runs:
            ceiling.setdefault(run.label, {})[run.seed] = R.load_evaluation(run)
        names = first.modality_names
        arm = Ceiling(
            trainer=dedicated_trainer,
            subsets={_subset_label(r, names): ceiling[r.label] for r in ceiling_runs if r.seed == seeds[0]},
            datasets={_subset_label(r, names): r.dataset_folder for r in ceiling_runs if r.seed == seeds[0]},
            trainings=len(ceiling_runs),
            train_seconds=sum(
                sum(read_curves(r.fold_folder / "checkpoint_final.pth").epoch_seconds) for r in ceiling_runs
            ),
        )
    return write_report(
        results, reference, curves, out, header, meta, known_spreads, figures, arm, missing, kinds
    )


def _subset_label(run, names: list[str]) -> str:
    """The source dataset's name of the subset a dedicated run's dataset holds (`T1c+Fl`)."""
    from nnunet_holder.compare.dedicated import subset_of

    return subset_of(run.dataset_folder, names)


def _dedicated_runs(
    dataset_folder: str,
    raw: Path,
    specs: list[str],
    trainer: str,
    seeds: list[int],
    out: Path,
    plans: str,
    configuration: str,
    fold: int,
    env: dict[str, str],
    first_id: int | None,
    metrics: tuple[str, ...],
) -> list:
    """Derive (or find) the dataset of every listed subset; one run per (subset, seed)."""
    from nnunet_holder.compare import runs as R
    from nnunet_holder.compare.dedicated import FIRST_ID, derive_subset_dataset, parse_subsets, subset_code
    from nnunet_holder.subsets import modality_names

    channel_names = json.loads((raw / "dataset.json").read_text())["channel_names"]
    names = modality_names(channel_names)
    subsets = parse_subsets(specs, channel_names)
    print(
        f"ceiling: {len(subsets)} dedicated models per seed ({len(subsets) * len(seeds)} trainings) "
        f"of {trainer}, plus {trainer} on the full set",
        flush=True,
    )
    runs = []
    for subset in subsets:
        derived = derive_subset_dataset(
            dataset_folder, subset, plans, configuration, first_id or FIRST_ID, env=env
        )
        label = f"dedicated_{subset_code(subset, names)}"
        print(f"  {label}: {derived}", flush=True)
        runs += [
            R.Run(trainer, s, out, derived, plans, configuration, fold, label=label, metrics=metrics)
            for s in seeds
        ]
    return runs


SHARED_SETTINGS: tuple[str, ...] = ("d", "c", "p", "f", "mirroring")
"""The `compare` arguments one output folder is bound to (trainers and seeds can grow)."""


def _run(args: argparse.Namespace) -> int:
    out = Path(args.output).resolve()
    meta_file = out / COMPARE_COMMAND
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
    atomic_write(meta_file, json.dumps(settings, indent=2))  # workers starting together write the same
    if args.claim_timeout <= 0:
        raise SystemExit(f"--claim-timeout must be positive, got {args.claim_timeout}")
    run_comparison(
        args.d, args.c, args.tr, args.seeds, out, args.reference, args.p, args.f, args.device, args.mirroring,
        jobs=args.jobs, dedicated=args.dedicated, dedicated_trainer=args.dedicated_trainer,
        dedicated_first_id=args.dedicated_first_id, takeover=Takeover(args.claim_timeout, args.reclaim),
        metrics=args.metrics,
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="train trainers × seeds, evaluate every modality subset, report mean ± std and the verdict",
        description=__doc__.split("\n\n")[1],
        epilog=__doc__.split("\n\n")[3],
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
        help="trainings side by side (default 1). On the CPU each gets cores/JOBS torch threads, fewer "
        "where other workers of the comparison train on the same host (nnUNet_torch_threads; a thread "
        "count other than a lone run's changes its float rounding); "
        "on CUDA each gets one GPU of CUDA_VISIBLE_DEVICES, round robin",
    )
    p.add_argument(
        "--mirroring", action="store_true", help="test-time mirroring in the evaluation (default off)"
    )
    p.add_argument(
        "--dedicated", nargs="*", metavar="SUBSET",
        help="also train the ceiling: one --dedicated-trainer model per listed modality subset, on a "
        "derived dataset holding only its channels (e.g. T1 T1c T2 FLAIR T1c+FLAIR ~T1; no subset "
        "given: all 14 proper subsets, 14 models per seed), each evaluated on its subset",
    )
    p.add_argument(
        "--dedicated-trainer", default="nnUNetTrainer",
        help="the vanilla trainer of the ceiling, on the compared schedule (default nnUNetTrainer; "
        "e.g. nnUNetTrainer_demo with the _demo trainers); it also gives the full set's ceiling",
    )
    p.add_argument(
        "--dedicated-first-id", type=int, default=None,
        help="derived datasets take the lowest free dataset id from here (default 900, up to 999); "
        "an earlier derived dataset of the same subset is reused",
    )
    p.add_argument(
        "--metrics", nargs="+", choices=list(METRIC_SETS), default=list(DEFAULT_METRIC_SETS),
        help="the evaluation's metric sets: "
        + "; ".join(f"'{name}': {text}" for name, text in METRIC_SETS.items())
        + " (default: legacy). The report's main tables are of the legacy Dice where legacy is asked for, "
        "else of the lesion-wise Dice; the lesion-wise Dice beside legacy gets a section of its own. Every "
        "heading names its metric. A run evaluated without a set asked for is evaluated again. "
        "--dedicated needs legacy",
    )
    p.add_argument(
        "--claim-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help="a run claimed by a worker on another host whose claim has not been touched for this long "
        f"(its worker touches it every min(60 s, timeout/10)) is taken over (default {DEFAULT_TIMEOUT:.0f}); "
        "on the same host a claim is taken over as soon as its worker and training are gone",
    )
    p.add_argument(
        "--reclaim", action="store_true",
        help="take over the runs claimed by workers on other hosts at once: only for a command that runs "
        "after every other worker has ended (the final job of a job array)",
    )
    p.set_defaults(func=_run)
