"""A worker of a comparison: take the next run nobody holds, train it, evaluate it, take the next.

Every `compare` command is such a worker, so one command on one machine does the whole comparison,
and N copies of the same command (a Slurm job array, several machines sharing the output folder)
split it between them: each run is claimed (`claims.py`) before it is trained, and a run that is
evaluated, or held by a live worker, is never claimed. A worker with `jobs` slots runs that many
trainings side by side; each slot trains its run with `--c` (an interrupted run resumes from its
latest checkpoint) and then evaluates it, one evaluation at a time in this process, then releases
the claim. A run whose claim was taken over while it trained (see `claims.py`) has its training
stopped and is left to the new holder. A failed run is released as failed, named at the end, and
stops none of the others. After every epoch a slot prints the run's progress line and rewrites the
status file (`progress.py`).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nnunet_holder.compare import runs as R
from nnunet_holder.compare.claims import (
    ACTIVE,
    DONE,
    FAILED,
    RELEASED,
    Claim,
    Claims,
    Takeover,
    heartbeat_interval,
    process_start,
    trainings_beside,
)
from nnunet_holder.compare.progress import TrainingProgress, num_epochs, write_status


class Worker:
    """This process's share of a comparison's runs."""

    def __init__(
        self,
        runs: Sequence[R.Run],
        out: Path,
        device: str,
        env: dict[str, str],
        mirroring: bool,
        takeover: Takeover,
        jobs: int = 1,
    ) -> None:
        self.runs, self.out, self.device, self.env = list(runs), out, device, env
        self.mirroring, self.takeover, self.jobs = mirroring, takeover, jobs
        self.failures: list[str] = []
        self._pick = threading.Lock()
        self._evaluate = threading.Lock()
        self._status = threading.Lock()

    def run(self) -> list[str]:
        """Work until no run is left to claim; the failures (one line each)."""
        self.write_status()
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            list(pool.map(self._slot, range(self.jobs)))
        self.write_status()
        return self.failures

    def write_status(self) -> None:
        with self._status:
            write_status(self.runs, self.out, self.takeover)

    def next_run(self, slot: int) -> tuple[R.Run, Claim] | None:
        """The first run, in the comparison's order, not evaluated and claimed now by this worker."""
        with self._pick:
            for run in self.runs:
                if run.evaluated:
                    continue
                claim = Claims(run.claims_folder).take(self.takeover, slot=slot, stage="starting")
                if claim is None:
                    continue
                if run.evaluated:  # finished by its last holder since the check above
                    claim.release(RELEASED, "already evaluated")
                    continue
                return run, claim
        return None

    def _slot(self, slot: int) -> None:
        while (picked := self.next_run(slot)) is not None:
            run, claim = picked
            try:
                self._work(run, claim, slot)
            except (SystemExit, Exception) as e:  # one run's failure stops none of the others
                claim.release(FAILED, str(e) or type(e).__name__)
                self.failures.append(str(e))
                print(f"{run.name} seed {run.seed}: failed: {e}", flush=True)
            self.write_status()

    def _work(self, run: R.Run, claim: Claim, slot: int) -> None:
        training: list[subprocess.Popen] = []

        def stop_training() -> None:  # the claim was taken over: leave the fold folder to its new holder
            for proc in training:
                proc.kill()

        claim.keep_alive(heartbeat_interval(self.takeover.timeout), on_lost=stop_training)
        resumed = " (taking over from a worker that is gone)" if claim.record["follows"] == ACTIVE else ""
        if not run.trained:
            print(f"{run.name} seed {run.seed}: training{resumed} (log: {run.log})", flush=True)
            progress = TrainingProgress()

            def line(text: str) -> None:
                if progress.feed(text):
                    progress.num_epochs = progress.num_epochs or num_epochs(run.fold_folder)
                    claim.update(progress=progress.record())
                    print(f"   [{run.name} seed {run.seed}] {progress.summary()}", flush=True)
                    self.write_status()

            claim.update(stage="training", trained=True)
            self.write_status()
            slot_env = R.slot_env(slot, self.jobs, self.device, self._beside(run))
            note = f"{claim.record['host']} pid {claim.record['pid']}, claim {claim.number}"
            try:
                R.train(
                    run, self.device, {**self.env, **slot_env}, line,
                    lambda proc: (training.append(proc), self._child(claim, proc)), note,
                )
            except SystemExit:
                if claim.lost:
                    print(f"{run.name} seed {run.seed}: taken over by another worker; stopped", flush=True)
                    return
                raise
        if claim.lost or claim.taken_over():
            print(f"{run.name} seed {run.seed}: taken over by another worker; left to it", flush=True)
            return
        claim.update(stage="evaluating", child=None)
        self.write_status()
        with self._evaluate:
            print(f"{run.name} seed {run.seed}: evaluating every modality subset", flush=True)
            from nnunetv2.paths import nnUNet_raw

            raw = Path(nnUNet_raw) / run.dataset_folder
            R.evaluate(run, raw / "imagesTs", raw / "labelsTs", self.device, self.mirroring)
        claim.release(DONE)

    def _beside(self, run: R.Run) -> int:
        """How many trainings of other workers of this comparison run on this worker's cores (CPU
        only); says so where there are any."""
        if self.device != "cpu":
            return 0
        others = trainings_beside((r.claims_folder for r in self.runs), self.takeover)
        pids = [pid for pid in others if R.shares_cores(pid)]
        if pids:
            cores = R.usable_cores()
            share = max(1, cores // (self.jobs + len(pids)))
            listed = ", ".join(map(str, sorted(pids)))
            print(
                f"{run.name} seed {run.seed}: {len(pids)} training(s) of other workers of this comparison "
                f"run on this worker's cores (pid {listed}); this one gets {share} of {cores} cores, while "
                "those keep the threads they started with. On one machine run one worker with --jobs N "
                "instead (docs/guide/compare.md).",
                flush=True,
            )
        return len(pids)

    @staticmethod
    def _child(claim: Claim, proc: subprocess.Popen) -> None:
        claim.update(child={"pid": proc.pid, "start": process_start(proc.pid)})
