"""`compare` split over two worker processes that share the output folder, one of them killed mid-training.

Two workers run the same command (two trainers and the dedicated T1c model, one seed, on the tiny
dataset's `3d_small`) into one folder while a single-process comparison of the same runs runs into
another. As soon as one worker's run is in its first epoch, that worker is killed with SIGKILL:
its training process must die with it, and the other worker must take the run over (same host,
dead pids), resume it with `--c` (no checkpoint yet: from the start), finish every run and write
the report. Then: each run has one claim per worker that worked on it and one training per claim
that trained, the status file shows every run done, and the report equals the single process's
(seeded, `nnUNet_n_proc_DA=0`, one thread everywhere: the runs repeat exactly). Marked slow
(about 10 minutes on 2 cores: seven real trainings).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnunet_holder.compare.claims import ACTIVE, DONE, Claims, process_alive, read_claim
from nnunet_holder.compare.runs import TRAINING_STARTS
from nnunet_holder.file_names import COMPARISON_CSV, COMPARISON_JSON, COMPARISON_MD, STATUS_JSON, STATUS_MD
from tests.helpers_nnunet import run_cli

pytestmark = pytest.mark.slow

TRAINERS = ("nnUNetTrainer_smoke", "nnUNetTrainerModalityDropout_smoke")
RUNS = (f"{TRAINERS[0]}_seed_0", f"{TRAINERS[1]}_seed_0", "dedicated_T1c_seed_0")


def _start(dataset: dict, out: Path, env: dict[str, str], name: str) -> subprocess.Popen:
    """A `compare` worker writing into `out`, its output in `name`.stdout beside it."""
    args = ["compare", "-d", str(dataset["id"]), "-c", "3d_small", "-tr", *TRAINERS, "--seeds", "0"]
    args += ["-o", str(out), "--dedicated", "T1c", "--dedicated-trainer", TRAINERS[0]]
    log = open(out.parent / f"{name}.stdout", "w")
    exe = Path(sys.executable).parent / "nnunet-holder"
    return subprocess.Popen([str(exe), *args], env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _first_epoch(out: Path, deadline: float) -> tuple[str, dict]:
    """The first run whose training is in its first epoch, and its current claim's record."""
    while time.time() < deadline:
        for log in sorted((out / "logs").glob("train_*.log")) if (out / "logs").is_dir() else []:
            if ": Epoch 0" in log.read_text():
                name = log.stem.removeprefix("train_")
                return name, Claims(out / "claims" / name).current()[1]
        time.sleep(0.2)
    raise AssertionError("no worker started a training")


def _report_without_timings(out: Path) -> tuple[dict, str, str]:
    data = json.loads((out / COMPARISON_JSON).read_text())
    del data["ceiling"]["train_seconds"]  # the epoch times: the only numbers that differ between runs
    md = (out / COMPARISON_MD).read_text().split("## Training curves")[0]
    md = "\n".join(line for line in md.splitlines() if not line.startswith("Cost:"))
    return data, md, (out / COMPARISON_CSV).read_text()


@pytest.fixture(scope="module")
def workers(tiny_dataset, tmp_path_factory):
    proc = run_cli(["nnunet-holder", "plan-small", "-d", str(tiny_dataset["id"])], tiny_dataset["env"])
    assert "added 3d_small" in proc.stdout or "already there" in proc.stdout
    env = {**tiny_dataset["env"], "nnUNet_n_proc_DA": "0", "nnUNet_torch_threads": "1"}
    env.update(dict.fromkeys(("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"), "1"))
    root = tmp_path_factory.mktemp("workers")
    shared, single = root / "shared", root / "single"
    # the single-process comparison runs beside the workers: one thread each, so the same numbers
    pair = [_start(tiny_dataset, shared, env, f"worker_{k}") for k in range(2)]
    baseline = _start(tiny_dataset, single, env, "single")
    try:
        killed_run, record = _first_epoch(shared, time.time() + 1800)
        victim = next(p for p in pair if p.pid == record["pid"])
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        child = record["child"]  # recorded when the training started, before its first epoch
        deadline = time.time() + 30
        while process_alive(child["pid"], child["start"]):
            assert time.time() < deadline, "the killed worker's training lives on"
            time.sleep(0.1)
        survivor = next(p for p in pair if p is not victim)
        assert survivor.wait(timeout=2400) == 0 and baseline.wait(timeout=2400) == 0
    finally:
        for proc in (*pair, baseline):
            if proc.poll() is None:
                proc.kill()
    return shared, single, killed_run, (root / f"worker_{pair.index(survivor)}.stdout").read_text()


def test_the_killed_run_was_taken_over_and_resumed_by_the_other_worker(workers):
    shared, _, killed_run, stdout = workers
    claims = Claims(shared / "claims" / killed_run)
    assert claims.numbers() == [0, 1]
    first, second = (read_claim(claims.folder / f"{n}.json")[0] for n in (0, 1))
    assert first["state"] == ACTIVE and not process_alive(first["pid"], first["start"])
    assert second["state"] == DONE and second["follows"] == ACTIVE and second["pid"] != first["pid"]
    assert "taking over from a worker that is gone" in stdout and "report:" in stdout
    log = (shared / "logs" / f"train_{killed_run}.log").read_text()
    resumed = log.split(TRAINING_STARTS)[2]
    # --c with no checkpoint written yet: nnU-Net says so and trains from the start
    assert "Cannot continue training because there seems to be no checkpoint" in resumed
    assert "Epoch 0" in resumed and "Training done." in resumed


def test_every_run_was_trained_once_per_claim_that_trained_it(workers):
    shared, *_ = workers
    for run in RUNS:
        claims = Claims(shared / "claims" / run)
        records = [read_claim(claims.folder / f"{n}.json")[0] for n in claims.numbers()]
        log = (shared / "logs" / f"train_{run}.log").read_text()
        assert log.count(TRAINING_STARTS) == sum(bool(r.get("trained")) for r in records) >= 1
        assert records[-1]["state"] == DONE
        assert all(r["state"] == ACTIVE and not process_alive(r["pid"], r["start"]) for r in records[:-1])


def test_the_status_file_shows_every_run_done(workers):
    shared, *_ = workers
    status = json.loads((shared / STATUS_JSON).read_text())
    assert status["done"] == len(RUNS) and {r["run"] + "_seed_0" for r in status["runs"]} == set(RUNS)
    for row in status["runs"]:
        assert row["state"] == "done" and row["epoch"] == row["num_epochs"] - 1 == 2
    assert f"{len(RUNS)} of {len(RUNS)} runs done" in (shared / STATUS_MD).read_text()


def test_the_two_workers_report_equals_the_single_process_report(workers, tiny_dataset):
    shared, single, *_ = workers
    a, b = _report_without_timings(shared), _report_without_timings(single)
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]
    assert "missing" not in a[0]
    raw = Path(tiny_dataset["env"]["nnUNet_raw"])
    records = [
        json.loads(d.read_text()).get("nnunet_holder_dedicated") for d in raw.glob("Dataset*/dataset.json")
    ]
    # three processes derived the T1c dataset at once: one dataset
    assert records.count({"source": tiny_dataset["name"], "channels": [1]}) == 1
