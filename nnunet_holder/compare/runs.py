"""The runs of a comparison: train every (trainer, seed) not yet trained, evaluate every run once.

Each seed has its own nnU-Net results folder (`OUT/models/seed_S`, passed to `nnUNetv2_train` as
`nnUNet_results`, with `nnUNet_seed=S`), because nnU-Net names a model folder by trainer, plans and
configuration only. A run whose `checkpoint_final.pth` exists is trained; any other run is
(re)started with `--c`, which continues from `checkpoint_latest.pth` where an interrupted run left
one and starts fresh otherwise. A run whose `OUT/evaluation/TRAINER/seed_S/subset_table.json`
exists and whose `timing.json` lists no failed case is evaluated (an evaluation with failed cases
is done again). So an interrupted comparison continues where it stopped. With `jobs` > 1,
that many trainings run side by side, each with its share of the CPU threads
(`nnUNet_torch_threads`) or its own GPU (`CUDA_VISIBLE_DEVICES`).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from nnunet_holder.evaluate.tables import Summary, load_summary
from nnunet_holder.trainers.cpu_threads import THREADS_VARIABLE

TABLE = "subset_table.json"


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

    @property
    def results_root(self) -> Path:
        return self.out / "models" / f"seed_{self.seed}"

    @property
    def model_folder(self) -> Path:
        name = f"{self.trainer}__{self.plans}__{self.configuration}"
        return self.results_root / self.dataset_folder / name

    @property
    def fold_folder(self) -> Path:
        return self.model_folder / f"fold_{self.fold}"

    @property
    def trained(self) -> bool:
        return (self.fold_folder / "checkpoint_final.pth").is_file()

    @property
    def evaluation_folder(self) -> Path:
        return self.out / "evaluation" / (self.label or self.trainer) / f"seed_{self.seed}"

    @property
    def evaluated(self) -> bool:
        """The subset table exists and no test case failed in the evaluation that wrote it."""
        timing = self.evaluation_folder / "timing.json"
        if not (self.evaluation_folder / TABLE).is_file() or not timing.is_file():
            return False
        return not json.loads(timing.read_text()).get("failures")

    @property
    def log(self) -> Path:
        return self.out / "logs" / f"train_{self.label or self.trainer}_seed_{self.seed}.log"


def train(run: Run, device: str, env: dict[str, str], show: Sequence[str] = (), label: str = "") -> None:
    """`nnUNetv2_train` of one run (seeded, `--c`), its output in `run.log`; lines with `show` echoed
    (after `label`, which tells concurrent runs apart)."""
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
    with open(run.log, "a") as log:
        proc = subprocess.Popen(
            command, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in proc.stdout:
            log.write(line)
            if any(s in line for s in show):
                print(f"   {label}" + line.rstrip()[-150:], flush=True)
        if proc.wait() != 0:
            raise SystemExit(
                f"training {run.trainer} seed {run.seed} failed (exit {proc.returncode}); see {run.log}"
            )


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


THREAD_POOL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""The thread counts a fresh interpreter's native libraries read (OpenMP for torch, MKL, OpenBLAS)."""
CHILD_THREAD_VARIABLES = (*THREAD_POOL_VARIABLES, "nnUNet_def_n_proc")
"""What a concurrent CPU training's own processes read for their thread and worker counts.
`nnUNet_torch_threads` reaches only the training process; nnU-Net's final validation starts
`nnUNet_def_n_proc` spawn workers, each of which would import torch with a thread per core. On
the 2-core host that froze the run beside it: its epochs took 20-31 s instead of 6 s for the
minute of the other run's validation (docs/demo_record.md, "Concurrent trainings")."""


def slot_env(slot: int, jobs: int, device: str) -> dict[str, str]:
    """The environment of training slot `slot` of `jobs` concurrent ones: on the CPU an equal share
    of this process's cores, for torch and for every process the training starts; on CUDA one
    visible GPU per slot, round robin."""
    if jobs == 1:
        return {}
    if device == "cpu":
        share = str(max(1, usable_cores() // jobs))
        return {THREADS_VARIABLE: share, **dict.fromkeys(CHILD_THREAD_VARIABLES, share)}
    visible = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    if not visible:
        import torch

        visible = [str(i) for i in range(max(1, torch.cuda.device_count()))]
    return {"CUDA_VISIBLE_DEVICES": visible[slot % len(visible)]}


def train_all(
    runs: Sequence[Run],
    device: str,
    env: dict[str, str],
    jobs: int = 1,
    show: Sequence[str] = (),
) -> None:
    """Train every run not yet trained, `jobs` at a time; a failed run stops none of the others,
    and the failures are reported together at the end."""
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(jobs):
        slots.put(slot)

    def work(run: Run) -> str | None:
        slot = slots.get()
        try:
            print(f"{run.label or run.trainer} seed {run.seed}: training (log: {run.log})", flush=True)
            label = f"[{run.label or run.trainer} seed {run.seed}] " if jobs > 1 else ""
            train(run, device, {**env, **slot_env(slot, jobs, device)}, show, label)
            return None
        except SystemExit as e:
            return str(e)
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        failures = [f for f in pool.map(work, [r for r in runs if not r.trained]) if f]
    if failures:
        raise SystemExit("\n".join(failures))


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
        title=f"{run.label or run.trainer} seed {run.seed}",
        failures=failures,
    )
    if failures:
        raise SystemExit(
            f"{run.trainer} seed {run.seed}: {len(failures)} test cases failed:\n" + "\n".join(failures)
        )
    return summary


def load_evaluation(run: Run) -> Summary:
    return load_summary(run.evaluation_folder / TABLE)


def nnunet_env() -> dict[str, str]:
    """This process's environment with the project's trainers visible to nnU-Net."""
    from nnunet_holder.trainer_path import trainer_path

    ours = str(trainer_path())
    paths = [p for p in os.environ.get("nnUNet_extTrainer", "").split(os.pathsep) if p]
    return {**os.environ, "nnUNet_extTrainer": os.pathsep.join(paths if ours in paths else [*paths, ours])}
