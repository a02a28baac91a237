"""Claims of a comparison's runs among workers, the status file, and a report that names missing runs.

Racing processes claim the same resources (each is claimed once); the staleness rules are checked
on claim records of live, dead and reused pids, other hosts and failed runs; a holder notices a
takeover; the derivation lock serialises processes; a training started through `child.py` dies
with its killed worker; two workers deriving the same dedicated dataset at once get one dataset.
No training here: tests/test_compare_workers.py runs real workers (slow).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nnunet_holder.compare.claims import (
    ACTIVE,
    DONE,
    FAILED,
    HOST,
    Claims,
    Takeover,
    exclusive,
    process_alive,
    process_start,
    read_claim,
    trainings_beside,
)
from nnunet_holder.compare.progress import TrainingProgress, num_epochs, run_status, write_status
from nnunet_holder.compare.runs import Run, shares_cores, slot_env, usable_cores
from nnunet_holder.compare.work import Worker
from nnunet_holder.file_names import COMPARISON_JSON, STATUS_JSON, STATUS_MD, SUBSET_TABLE, TIMING
from nnunet_holder.parts import atomic_write

FORK = multiprocessing.get_context("fork")


def _claim_all(folder: str, resources: int, barrier, results, hold) -> None:
    """Claim every resource it can; before each resource all processes meet at the barrier, so
    every claim is contended by all of them (a scheduler that runs one process to the end first
    cannot turn the race into a sequence). Stay alive (a live holder) until told, since an exited
    worker's claims are free to take over."""
    for k in range(resources):
        barrier.wait(60)
        if Claims(Path(folder) / str(k)).take(Takeover()) is not None:
            results.put((k, os.getpid()))
    results.put(None)
    hold.wait(60)


def test_racing_processes_claim_each_resource_once(tmp_path):
    results, hold, barrier = FORK.Queue(), FORK.Event(), FORK.Barrier(4)
    procs = [
        FORK.Process(target=_claim_all, args=(str(tmp_path), 40, barrier, results, hold)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    taken, finished = [], 0
    while finished < len(procs):
        item = results.get(timeout=60)
        finished += item is None
        taken += [item] if item is not None else []
    hold.set()
    for p in procs:
        p.join(30)
    assert sorted(k for k, _ in taken) == list(range(40))  # every resource once, by one process
    for k in range(40):
        assert Claims(tmp_path / str(k)).numbers() == [0]
        record, _ = read_claim(tmp_path / str(k) / "0.json")
        assert (k, record["pid"]) in taken and record["host"] == HOST


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _record(**fields) -> dict:
    return {"host": HOST, "pid": os.getpid(), "start": process_start(os.getpid()), "state": ACTIVE, **fields}


def test_a_claim_on_this_host_is_stale_exactly_when_its_worker_and_training_are_gone():
    t = Takeover(timeout=600)
    now = time.time()
    assert not t.stale(_record(), now)
    assert t.stale(_record(pid=_dead_pid()), now)
    assert t.stale(_record(start="1"), now)  # the pid lives, but it is another process (reused pid)
    child = {"pid": os.getpid(), "start": process_start(os.getpid())}
    assert not t.stale(_record(pid=_dead_pid(), child=child), now)  # its training still runs
    assert not Takeover(timeout=600, reclaim=True).stale(_record(), now)  # --reclaim spares live ones


def test_another_hosts_claim_is_stale_after_the_timeout_or_with_reclaim():
    record = _record(host="elsewhere")
    now = time.time()
    assert not Takeover(timeout=600).stale(record, now - 599, now)
    assert Takeover(timeout=600).stale(record, now - 601, now)
    assert Takeover(timeout=600, reclaim=True).stale(record, now, now)


def test_released_claims_are_free_and_failed_ones_only_for_a_later_worker():
    now = time.time()
    t = Takeover(started=now)
    assert t.free(_record(state=DONE), now) and t.free(_record(state="released"), now)
    assert not t.free(_record(state=FAILED, ended=now + 1), now)
    assert t.free(_record(state=FAILED, ended=now - 1), now)
    assert not t.free(None, now, now) and t.free(None, now - 601, now)  # a claim being written


def test_a_dead_workers_claim_is_taken_over_once_and_its_holder_notices(tmp_path):
    claims = Claims(tmp_path / "run")
    claims.folder.mkdir()
    (claims.folder / "0.json").write_text(json.dumps(_record(pid=_dead_pid())))
    claim = claims.take(Takeover())
    assert claim is not None and claim.number == 1 and claim.record["follows"] == ACTIVE
    assert claims.take(Takeover()) is None  # held by this live process now
    assert claims.held(Takeover())
    lost = threading.Event()
    claim.keep_alive(0.05, on_lost=lost.set)
    (claims.folder / "2.json").write_text(json.dumps(_record(host="elsewhere")))  # a takeover
    assert lost.wait(5) and claim.lost
    claim.update(stage="evaluating")
    assert read_claim(claim.path)[0].get("stage") != "evaluating"  # a lost claim is not written


def _count_under_lock(folder: str, counter: str, times: int) -> None:
    for _ in range(times):
        with exclusive(Path(folder), poll=0.01):
            value = int(Path(counter).read_text())
            time.sleep(0.002)
            Path(counter).write_text(str(value + 1))


def test_the_lock_lets_one_process_in_at_a_time(tmp_path):
    counter = tmp_path / "counter"
    counter.write_text("0")
    procs = [
        FORK.Process(target=_count_under_lock, args=(str(tmp_path / "lock"), str(counter), 15))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert int(counter.read_text()) == 45
    assert Claims(tmp_path / "lock").numbers() == list(range(45))
    assert not Claims(tmp_path / "lock").held(Takeover())


def _write_many(path: str, text: str, times: int) -> None:
    for _ in range(times):
        atomic_write(Path(path), text)


def test_two_writers_of_one_file_never_collide(tmp_path):
    """Two threads replacing the same file: each write lands whole. With one temporary name for every
    writer, one writer's rename took the other's temporary file away (FileNotFoundError)."""
    target = tmp_path / STATUS_MD
    errors = []

    def write(text: str) -> None:
        try:
            _write_many(str(target), text, 300)
        except OSError as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(c * 5000,)) for c in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and target.read_text() in ("a" * 5000, "b" * 5000)


def test_a_training_started_through_child_dies_with_its_killed_worker(tmp_path):
    pid_file = tmp_path / "child.pid"
    worker = (
        "import subprocess, sys, time\n"
        "from nnunet_holder.compare.child import die_with_parent\n"
        f"p = subprocess.Popen(die_with_parent(['/bin/sleep', '120']))\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", worker])
    deadline = time.time() + 30
    while not pid_file.is_file() or not pid_file.read_text():
        assert time.time() < deadline
        time.sleep(0.05)
    child = int(pid_file.read_text())
    time.sleep(0.5)  # the wrapper has exec'd sleep
    assert process_alive(child)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while process_alive(child):
        assert time.time() < deadline, "the training outlived its killed worker"
        time.sleep(0.05)


LOG = [  # nnU-Net's lines end in a space
    "2026-12-06 14:28:56.934408: Epoch 0 \n",
    "2026-12-06 14:28:56.934601: Current learning rate: 0.01 \n",
    "2026-12-06 14:29:35.093656: "
    "Pseudo dice, mean over 15 modality subsets: 0.2288; Fl 0.236, T2 0.238 \n",
    "2026-12-06 14:29:35.094037: train_loss 1.2662 \n",
    "2026-12-06 14:29:35.094433: "
    "Pseudo dice [np.float32(0.4657), np.float32(0.1201), np.float32(0.148)] \n",
    "2026-12-06 14:29:35.094620: Epoch time: 38.16 s \n",
    "2026-12-06 14:29:35.125138: Epoch 1 \n",
    "2026-12-06 14:30:10.069410: Pseudo dice [0.7682, 0.3455, 0.2929] \n",
    "2026-12-06 14:30:10.069590: Epoch time: 34.96 s \n",
    "2026-12-06 14:30:10.105040: Epoch 2 \n",
]


def test_progress_follows_nnunets_log_lines():
    p = TrainingProgress(num_epochs=40)
    ends = [p.feed(line) for line in LOG]
    assert ends.count(True) == 2 and p.phase == "training" and p.epoch == 2
    assert p.pseudo_dice == pytest.approx(np.mean([0.7682, 0.3455, 0.2929]))
    assert p.subset_dice == pytest.approx(0.2288)
    assert p.seconds_per_epoch == pytest.approx((38.16 + 34.96) / 2)
    assert p.eta_seconds == pytest.approx(37 * (38.16 + 34.96) / 2)  # epochs 3..39 after epoch 2
    assert p.summary() == "epoch 3/40, pseudo-Dice 0.469 (subsets 0.229), 36.6 s/epoch, ETA 0:22:33"
    assert p.feed("2026-12-06 14:31:17.141372: Training done. \n") and p.phase == "validating"
    assert "final validation" in p.summary()


def test_the_epoch_count_is_nnunets_own_record(tmp_path):
    assert num_epochs(tmp_path) is None
    (tmp_path / "debug.json").write_text(json.dumps({"num_epochs": "1000", "other": "x"}))
    assert num_epochs(tmp_path) == 1000


def test_a_worker_shares_the_cores_with_the_trainings_of_other_workers_on_its_host(tmp_path, capsys):
    """Each worker divided the cores by its own --jobs only: two workers on one 2-core host ran
    four threads, ten times slower (docs/guide/compare.md)."""
    runs = [Run(f"T{k}", 0, tmp_path, "Dataset001_X", "nnUNetPlans", "3d_fullres", 0) for k in range(6)]
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = {"pid": other.pid, "start": process_start(other.pid)}
        records = [
            _record(**live, stage="training"),  # counted: another live worker of this host trains
            _record(**live, stage="evaluating"),  # evaluation is one process, not a training's threads
            _record(pid=_dead_pid(), stage="training"),
            _record(stage="training"),  # this worker's own slot, counted by its --jobs
            _record(host="elsewhere", stage="training"),
        ]
        for run, record in zip(runs, records, strict=False):
            run.claims_folder.mkdir(parents=True)
            (run.claims_folder / "0.json").write_text(json.dumps(record))
        folders = [r.claims_folder for r in runs]
        assert trainings_beside(folders, Takeover()) == [other.pid]
        training = {"pid": os.getpid(), "start": process_start(os.getpid())}
        with_child = _record(**live, stage="training", child=training)
        (runs[0].claims_folder / "1.json").write_text(json.dumps(with_child))
        assert trainings_beside(folders, Takeover()) == [os.getpid()]  # the training's pid, not its worker's
        (runs[0].claims_folder / "1.json").unlink()
        worker = Worker(runs, tmp_path, "cpu", {}, False, Takeover(), jobs=1)
        assert worker._beside(runs[5]) == 1
        assert f"pid {other.pid}" in capsys.readouterr().out
        assert Worker(runs, tmp_path, "cuda", {}, False, Takeover(), jobs=1)._beside(runs[5]) == 0
    finally:
        other.kill()
        other.wait()
    share = str(max(1, usable_cores() // 2))
    assert shares_cores(os.getpid())
    assert slot_env(0, 1, "cpu", beside=1)["nnUNet_torch_threads"] == share
    if usable_cores() == os.cpu_count():  # a lone training on the whole machine keeps nnU-Net's choice
        assert slot_env(0, 1, "cpu", beside=0) == {}
    assert slot_env(0, 1, "cuda", beside=1) == {}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two processes on disjoint cores need two")
def test_trainings_on_other_cores_are_not_shared_with():
    """Slurm tasks of one node each get cores of their own: a worker must not divide its cores by
    the trainings of the node's other tasks."""
    mine, theirs = sorted(os.sched_getaffinity(0))[:2]
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(other.pid, {theirs})
        os.sched_setaffinity(0, {mine})
        assert not shares_cores(other.pid)
        os.sched_setaffinity(0, {mine, theirs})
        assert shares_cores(other.pid)
    finally:
        os.sched_setaffinity(0, before)
        other.kill()
        other.wait()


def _evaluated(run: Run) -> None:
    run.evaluation_folder.mkdir(parents=True)
    (run.evaluation_folder / SUBSET_TABLE).write_text(json.dumps({"metrics": ["Dice_WT", "HD95_WT"]}))
    (run.evaluation_folder / TIMING).write_text(json.dumps({"failures": []}))


def test_the_status_file_names_every_runs_state(tmp_path):
    runs = [Run(f"T{k}", 0, tmp_path, "Dataset001_X", "nnUNetPlans", "3d_fullres", 0) for k in range(5)]
    _evaluated(runs[0])
    progress = TrainingProgress("training", epoch=4, num_epochs=10, pseudo_dice=0.5, epoch_seconds=[6.0])
    Claims(runs[1].claims_folder).take(Takeover(), stage="training", progress=progress.record())
    dead = Claims(runs[2].claims_folder)
    dead.folder.mkdir(parents=True)
    (dead.folder / "0.json").write_text(json.dumps(_record(pid=_dead_pid())))
    Claims(runs[3].claims_folder).take(Takeover()).release(FAILED, "training T3 seed 0 failed (exit 1)\nmore")
    state = write_status(runs, tmp_path, Takeover())
    rows = {r["run"]: r for r in state["runs"]}
    assert rows["T0"]["state"] == "done" and state["done"] == 1
    assert rows["T1"]["state"] == "training" and rows["T1"]["eta_seconds"] == pytest.approx(5 * 6.0)
    assert rows["T2"]["state"].startswith("interrupted")
    assert rows["T3"]["state"] == "failed: training T3 seed 0 failed (exit 1)"
    assert rows["T4"]["state"] == "not started" and rows["T4"]["claims"] == 0
    md = (tmp_path / STATUS_MD).read_text()
    assert "1 of 5 runs done" in md
    assert f"| T1 | 0 | training | 5/10 | 0.500 | 6.0 | 0:00:30 | {HOST} pid" in md
    assert json.loads((tmp_path / STATUS_JSON).read_text())["runs"] == state["runs"]
    assert run_status(runs[1], Takeover())["worker"] == f"{HOST} pid {os.getpid()}"


def test_a_report_written_while_runs_are_missing_names_each(tmp_path):
    from nnunet_holder.compare.report import write_incomplete, write_report
    from nnunet_holder.evaluate.tables import paper_subset_order, summarise

    order = paper_subset_order(("T1", "T1c", "T2", "Fl"))
    rng = np.random.default_rng(0)

    def summary():
        rows = [{"case": "c", "subset": s, "Dice_WT": float(rng.uniform())} for s in order]
        return summarise(rows, order, ["Dice_WT"])

    runs = {"A": {0: summary()}, "B": {0: summary()}}
    missing = ["B seed 1: failed: training B seed 1 failed (exit 1)", "A seed 2: not started"]
    md = write_report(runs, "A", {}, tmp_path, "# t", {"seeds": [0]}, missing=missing).read_text()
    assert "## Missing runs: this report is incomplete" in md
    assert all(f"- {line}" in md for line in missing)
    assert md.index("Missing runs") < md.index("## Verdict")
    assert json.loads((tmp_path / COMPARISON_JSON).read_text())["missing"] == missing
    md = write_incomplete(tmp_path / "none", "# t", {"seeds": []}, missing).read_text()
    assert all(f"- {line}" in md for line in missing)


def test_two_workers_deriving_the_same_subset_at_once_get_one_dataset(tiny_dataset, tmp_path):
    """Without the lock both saw no derived dataset and took ids of their own: two copies."""
    env = {**tiny_dataset["env"], "nnUNet_results": str(tmp_path / "results")}
    script = (
        "import sys, time\n"
        "from nnunet_holder.compare.dedicated import derive_subset_dataset\n"
        "while time.time() < float(sys.argv[1]): pass\n"
        f"print(derive_subset_dataset({tiny_dataset['name']!r}, (0, 2), 'nnUNetPlans', '3d_fullres', "
        "first_id=970, num_processes=1))\n"
    )
    start = str(time.time() + 3)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, start], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    names = [p.communicate(timeout=600)[0].strip().splitlines()[-1] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert names[0] == names[1]
    raw = Path(env["nnUNet_raw"])
    records = [
        json.loads(d.read_text()).get("nnunet_holder_dedicated") for d in raw.glob("Dataset*/dataset.json")
    ]
    assert records.count({"source": tiny_dataset["name"], "channels": [0, 2]}) == 1
