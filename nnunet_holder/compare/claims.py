"""Claims on shared work: which worker of a comparison trains a run, on a folder several machines share.

A resource (one run of a comparison, or a lock) has a claims folder whose files `0.json`,
`1.json`, ... are its claims; the highest number is the current one. A worker claims by creating
the next number with `O_CREAT | O_EXCL`, which the filesystem performs atomically (on NFS from
version 3 on): of two workers that try at once one creates the file and the other gets an error,
so a resource has one holder at a time. A claim names its worker (host, pid and the process's
start time, Slurm's job ids where set) and, while it trains, its training process; the holder
touches it every `heartbeat_interval(timeout)` seconds.

The current claim is free again when its holder released it (`done`, `released`), and stale, to
be taken over by the next number, when its holder is gone: on the same host as soon as neither
the worker nor its training process lives (pid and start time, so a reused pid does not count);
on another host, whose processes cannot be seen, when it has not been touched for `timeout`
seconds, or at once where the worker was started with `reclaim` (for a final job that runs after
every other worker has ended). A `failed` claim is retried only by a worker started after the
failure, so the workers running at the time do not each repeat a failing training. A holder whose
claim was taken over (a higher number exists, e.g. after it was suspended past the timeout) sees
it at its next heartbeat and stops. Claims are never deleted: the folder is the history of who
worked on the resource, and deleting one would let a worker with an old view of the folder create
a number that is in use. Hosts compare a claim's modification time with their own clock, so their
clocks must agree to well within `timeout` (NTP, as on any cluster).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nnunet_holder.parts import atomic_write

DEFAULT_TIMEOUT = 600.0
"""Seconds without a heartbeat after which another host's claim is stale: ten heartbeats, well above
NFS's attribute caching (up to 60 s) and the clock differences of a cluster."""
ACTIVE, DONE, FAILED, RELEASED = "active", "done", "failed", "released"
HOST = socket.gethostname()


def heartbeat_interval(timeout: float) -> float:
    """How often a holder touches its claim: a tenth of the timeout, at most once a minute."""
    return min(60.0, timeout / 10)


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_alive(pid: int, start: str | None = None) -> bool:
    """Whether process `pid` of this host runs (not a zombie) and, where `start` is given, is the same
    process that had that start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and (start is None or fields[19] == start)


def this_worker(**extra: object) -> dict:
    """The record of a claim made by this process: who, when, and Slurm's ids where it runs under Slurm."""
    ids = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID")
    slurm = {k: v for k in ids if (v := os.environ.get(k))}
    now = time.time()
    return {
        "host": HOST,
        "pid": os.getpid(),
        "start": process_start(os.getpid()),
        **({"slurm": slurm} if slurm else {}),
        "claimed": now,
        "claimed_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
        "state": ACTIVE,
        **extra,
    }


@dataclass(frozen=True)
class Takeover:
    """When a claim of another worker is free for this one."""

    timeout: float = DEFAULT_TIMEOUT
    reclaim: bool = False
    """Take over other hosts' active claims at once (only when no other worker runs)."""
    started: float = field(default_factory=time.time)
    """This worker's start: failures after it are not retried by it."""

    def stale(self, record: dict, mtime: float, now: float | None = None) -> bool:
        """Whether an active claim's holder is gone (see the module's rules)."""
        if record.get("host") == HOST:
            processes = [(record["pid"], record.get("start"))]
            if child := record.get("child"):
                processes.append((child["pid"], child.get("start")))
            return not any(process_alive(pid, start) for pid, start in processes)
        return self.reclaim or (now if now is not None else time.time()) - mtime > self.timeout

    def free(self, record: dict | None, mtime: float, now: float | None = None) -> bool:
        """Whether a new claim may follow this current claim (None: a claim being written, or unreadable)."""
        if record is None:  # created but not yet written: its claimer writes it within milliseconds
            return (now if now is not None else time.time()) - mtime > self.timeout
        state = record.get("state")
        if state in (DONE, RELEASED):
            return True
        if state == FAILED:
            return record.get("ended", 0.0) < self.started
        return self.stale(record, mtime, now)


def read_claim(path: Path) -> tuple[dict | None, float] | None:
    """(record, modification time) of a claim file; record None while it is being written; None if absent."""
    try:
        mtime = path.stat().st_mtime
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text), mtime
    except json.JSONDecodeError:
        return None, mtime


class Claims:
    """The claims folder of one resource."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def numbers(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(p.stem) for p in self.folder.glob("*.json") if p.stem.isdigit())

    def current(self) -> tuple[int, dict | None, float] | None:
        """(number, record, modification time) of the current claim; None where none was ever made."""
        for number in reversed(self.numbers()):
            if (found := read_claim(self.folder / f"{number}.json")) is not None:
                return number, *found
        return None

    def held(self, takeover: Takeover) -> bool:
        """Whether an active claim whose holder is alive (by `takeover`'s rules) holds the resource."""
        current = self.current()
        if current is None or current[1] is None:
            return current is not None and not takeover.free(None, current[2])
        return current[1].get("state") == ACTIVE and not takeover.stale(current[1], current[2])

    def take(self, takeover: Takeover, **extra: object) -> Claim | None:
        """A new claim where the current one is free (or there is none); None where another holds it.

        The next number is found by walking up from the highest listed one, so a directory listing
        that lags behind (NFS) costs a failed create, never a second holder.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        numbers = self.numbers()
        number = numbers[-1] if numbers else -1
        while True:
            found = read_claim(self.folder / f"{number}.json") if number >= 0 else None
            if found is not None and not takeover.free(*found):
                return None
            previous = found[0].get("state") if found is not None and found[0] is not None else None
            record = this_worker(follows=previous, **extra)
            try:
                fd = os.open(self.folder / f"{number + 1}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:  # another worker was first, or the listing was old: judge that claim
                number += 1
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(record, indent=2))
            return Claim(self.folder, number + 1, record)


class Claim:
    """A claim this process holds: update its record, keep it alive, release it."""

    def __init__(self, folder: Path, number: int, record: dict) -> None:
        self.folder, self.number, self.record = folder, number, record
        self.lost = False
        """Set when a later claim took this one over: the holder stops."""
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.folder / f"{self.number}.json"

    def taken_over(self) -> bool:
        return (self.folder / f"{self.number + 1}.json").exists()

    def update(self, **fields: object) -> None:
        """Merge `fields` into the record and rewrite it (whole, by rename), unless it was taken over."""
        with self._lock:
            if self.lost or self.taken_over():
                self.lost = True
                return
            self.record.update(fields)
            atomic_write(self.path, json.dumps(self.record, indent=2))

    def keep_alive(self, interval: float, on_lost: Callable[[], None] | None = None) -> None:
        """Touch the claim every `interval` seconds until released; call `on_lost` where it is taken over."""

        def beat() -> None:
            while not self._stop.wait(interval):
                if self.taken_over():
                    self.lost = True
                    if on_lost is not None:
                        on_lost()
                    return
                with contextlib.suppress(FileNotFoundError):
                    os.utime(self.path)

        threading.Thread(target=beat, name=f"heartbeat {self.path}", daemon=True).start()

    def release(self, state: str, message: str = "") -> None:
        """End the claim as `state` (DONE, FAILED or RELEASED) and stop its heartbeat."""
        self._stop.set()
        now = time.time()
        self.update(state=state, message=message, ended=now, child=None)


def trainings_beside(folders: Iterable[Path], takeover: Takeover) -> list[int]:
    """The training processes (pids) of the other workers on this host whose live claim among
    `folders` is training now: the claim's training, or its worker where none is recorded yet."""
    pids = []
    for folder in folders:
        current = Claims(folder).current()
        if current is None or (record := current[1]) is None:
            continue
        if (
            record.get("host") == HOST
            and record.get("pid") != os.getpid()
            and record.get("state") == ACTIVE
            and record.get("stage") == "training"
            and not takeover.stale(record, current[2])
        ):
            pids.append((record.get("child") or record)["pid"])
    return pids


@contextlib.contextmanager
def exclusive(folder: Path, takeover: Takeover | None = None, poll: float = 1.0) -> Iterator[Claim]:
    """Hold the lock whose claims folder is `folder` for the with-block, waiting while another holds it."""
    takeover = takeover or Takeover()
    claims = Claims(folder)
    told = False
    while (claim := claims.take(takeover)) is None:
        if not told:
            current = claims.current()
            who = f" by {current[1]['host']} pid {current[1]['pid']}" if current and current[1] else ""
            print(f"waiting for the lock {folder}, held{who}", flush=True)
            told = True
        time.sleep(poll)
    claim.keep_alive(heartbeat_interval(takeover.timeout))
    try:
        yield claim
    finally:
        claim.release(RELEASED)
