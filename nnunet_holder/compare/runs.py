"""The runs of a comparison: train every (trainer, seed) not yet trained, evaluate every run once.

Each seed has its own nnU-Net results folder (`OUT/models/seed_S`, passed to `nnUNetv2_train` as
`nnUNet_results`, with `nnUNet_seed=S`), because nnU-Net names a model folder by trainer, plans and
configuration only. A run whose `checkpoint_final.pth` exists is trained; any other run is
(re)started with `--c`, which continues from `checkpoint_latest.pth` (or `checkpoint_best.pth`)
where an interrupted run left one and starts fresh otherwise. A run whose
`OUT/evaluation/TRAINER/seed_S/subset_table.json` exists and whose `timing.json` lists no failed
case is evaluated (an evaluation with failed cases is done again, and so is one without every metric
set the run asks for, `Run.metrics`). So an interrupted comparison
continues where it stopped. Which worker trains a run is decided by the run's claims
(`OUT/claims/NAME_seed_S`, `claims.py`, `work.py`); with `jobs` > 1 a worker trains that many side
by side, each with its share of the CPU threads (`nnUNet_torch_threads`) or its own GPU
(`CUDA_VISIBLE_DEVICES`). A training process is started through `child.py`, so it dies with the
worker that started it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nnunet_holder.compare.child import die_with_parent
from nnunet_holder.evaluate.metric_sets import DEFAULT_METRIC_SETS, check_metric_sets, metric_set_columns
from nnunet_holder.evaluate.tables import Summary, load_summary
from nnunet_holder.file_names import SUBSET_TABLE, TIMING
from nnunet_holder.predict.locate import model_folder_in
from nnunet_holder.trainers.cpu_threads import THREADS_VARIABLE


@dataclass(frozen=True)
class Run:
    """One (trainer, seed) of a comparison and where its model and evaluation live."""

    trainer: str
    seed: int
    out: Path
    dataset_folder: str
    plans: str
    configuration: str
    fold: int
    label: str | None = None
    """The evaluation folder's name where it is not the trainer's (a dedicated model of one subset)."""
    metrics: tuple[str, ...] = DEFAULT_METRIC_SETS
    """The evaluation's metric sets (`evaluate/metric_sets.py`)."""

    @property
    def results_root(self) -> Path:
        return self.out / "models" / f"seed_{self.seed}"

    @property
    def model_folder(self) -> Path:
        return model_folder_in(
            self.results_root, self.dataset_folder, self.trainer, self.plans, self.configuration
        )

    @property
    def fold_folder(self) -> Path:
        return self.model_folder / f"fold_{self.fold}"

    @property
    def trained(self) -> bool:
        return (self.fold_folder / "checkpoint_final.pth").is_file()

    @property
    def evaluation_folder(self) -> Path:
        return self.out / "evaluation" / self.name / f"seed_{self.seed}"

    @property
    def evaluated(self) -> bool:
        """The subset table exists, holds every metric kind of `metrics`, and no test case failed in the
        evaluation that wrote it."""
        table, timing = self.evaluation_folder / SUBSET_TABLE, self.evaluation_folder / TIMING
        if not table.is_file() or not timing.is_file():
            return False
        try:
            failed = json.loads(timing.read_text()).get("failures")
            stored = json.loads(table.read_text())["metrics"]
        except (json.JSONDecodeError, KeyError):  # being written by the worker that evaluates it
            return False
        return not failed and metric_kinds(self.metrics) <= {m.split("_", 1)[0] for m in stored}

    @property
    def name(self) -> str:
        """The run's name in the report, the status and file names: the label, else the trainer."""
        return self.label or self.trainer

    @property
    def log(self) -> Path:
        return self.out / "logs" / f"train_{self.name}_seed_{self.seed}.log"

    @property
    def claims_folder(self) -> Path:
        return self.out / "claims" / f"{self.name}_seed_{self.seed}"


def metric_kinds(metric_sets: Sequence[str]) -> set[str]:
    """The metric kinds (`Dice`, `HD95`, `LesionDice`, ...) that the metric sets' columns hold."""
    return {c.split("_", 1)[0] for c in metric_set_columns(metric_sets, ["R"])}


def overlap_kinds(metric_sets: Sequence[str]) -> list[str]:
    """The overlap metric of each metric set, the kind of its first column: legacy → Dice."""
    return [metric_set_columns([m], ["R"])[0].split("_", 1)[0] for m in check_metric_sets(metric_sets)]


TRAINING_STARTS = "=== nnunet-holder compare: nnUNetv2_train started"
"""The line `train` writes into the run's log before each training it starts."""


def train(
    run: Run,
    device: str,
    env: dict[str, str],
    on_line: Callable[[str], None] | None = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
    note: str = "",
) -> None:
    """`nnUNetv2_train` of one run (seeded, `--c`), its output appended to `run.log` after a line
    `TRAINING_STARTS` (with `note`); every line goes to `on_line`, the process to `on_start`."""
    run.log.parent.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).parent / "nnUNetv2_train"
    command = [str(exe), run.dataset_folder, run.configuration, str(run.fold), "-tr", run.trainer]
    command += ["-p", run.plans, "-device", device, "--c"]
    run_env = {
        **env,
        "nnUNet_results": str(run.results_root),
        "nnUNet_seed": str(run.seed),
        "PYTHONUNBUFFERED": "1",
    }
    with open(run.log, "a", buffering=1) as log:  # line by line: `tail -f` and other workers read it live
        log.write(f"{TRAINING_STARTS} {time.strftime('%Y-%m-%d %H:%M:%S')} {note}\n")
        proc = subprocess.Popen(
            die_with_parent(command), env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if on_start is not None:
            on_start(proc)
        for line in proc.stdout:
            log.write(line)
            if on_line is not None:
                on_line(line)
        if proc.wait() != 0:
            raise SystemExit(
                f"training {run.name} seed {run.seed} failed (exit {proc.returncode}); see {run.log}"
            )


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def shares_cores(pid: int) -> bool:
    """Whether process `pid` may run on a core this process may run on (True where the OS does not
    tell: Slurm tasks of one node with cores of their own do not share them)."""
    if not hasattr(os, "sched_getaffinity"):
        return True
    try:
        return bool(os.sched_getaffinity(pid) & os.sched_getaffinity(0))
    except OSError:  # gone meanwhile, or not ours to inspect
        return True


THREAD_POOL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""The thread counts a fresh interpreter's native libraries read (OpenMP for torch, MKL, OpenBLAS)."""
CHILD_THREAD_VARIABLES = (*THREAD_POOL_VARIABLES, "nnUNet_def_n_proc")
"""What a concurrent CPU training's own processes read for their thread and worker counts.
`nnUNet_torch_threads` reaches only the training process; nnU-Net's final validation starts
`nnUNet_def_n_proc` spawn workers, each of which would import torch with a thread per core; on a
small host that stalls the run beside it for the length of the other run's validation
(docs/records/demo_record.md, "Concurrent trainings")."""


def slot_env(slot: int, jobs: int, device: str, beside: int = 0) -> dict[str, str]:
    """The environment of training slot `slot` of `jobs` concurrent ones: on the CPU an equal share
    of this process's cores, for torch and for every process the training starts, counting the
    `beside` trainings other workers run on this host; on CUDA one visible GPU per slot, round robin."""
    if device == "cpu":
        cores = usable_cores()
        # nnUNetv2_train -device cpu takes a thread per core of the machine, the right count only
        # where this process may use them all (not in a Slurm allocation or under taskset)
        if jobs + beside == 1 and cores == (os.cpu_count() or cores):
            return {}
        share = str(max(1, cores // (jobs + beside)))
        return {THREADS_VARIABLE: share, **dict.fromkeys(CHILD_THREAD_VARIABLES, share)}
    if jobs == 1:
        return {}
    visible = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    if not visible:
        import torch

        visible = [str(i) for i in range(max(1, torch.cuda.device_count()))]
    return {"CUDA_VISIBLE_DEVICES": visible[slot % len(visible)]}


def evaluate(run: Run, images: Path, labels: Path, device: str, mirroring: bool) -> Summary:
    """Every modality subset of the test cases, with the project's evaluation (preprocessed protocol)."""
    from nnunet_holder.evaluate.runner import evaluate_cases
    from nnunet_holder.evaluate.sources import raw_cases
    from nnunet_holder.predict.model import load_predictor, parse_device

    predictor = load_predictor(
        run.model_folder, [run.fold], device=parse_device(device), use_mirroring=mirroring, allow_tqdm=False
    )
    failures: list[str] = []
    n, cases = raw_cases(predictor, images, labels, failures)
    # the failures go into the evaluation's record, so a re-run sees that this table is incomplete
    summary = evaluate_cases(
        predictor,
        cases,
        run.evaluation_folder,
        num_cases=n,
        title=f"{run.name} seed {run.seed}",
        failures=failures,
        metrics=run.metrics,
    )
    if failures:
        raise SystemExit(
            f"{run.name} seed {run.seed}: {len(failures)} test cases failed:\n" + "\n".join(failures)
        )
    return summary


def load_evaluation(run: Run) -> Summary:
    return load_summary(run.evaluation_folder / SUBSET_TABLE)


def nnunet_env() -> dict[str, str]:
    """This process's environment with the project's trainers visible to nnU-Net."""
    from nnunet_holder.trainer_path import trainer_path

    ours = str(trainer_path())
    paths = [p for p in os.environ.get("nnUNet_extTrainer", "").split(os.pathsep) if p]
    return {**os.environ, "nnUNet_extTrainer": os.pathsep.join(paths if ours in paths else [*paths, ours])}
