"""A training that dies with the worker that started it: `python -m nnunet_holder.compare.child PID CMD ...`.

A worker of a comparison that is killed (SIGKILL, a node's out-of-memory killer) cannot stop its
`nnUNetv2_train` child, which would go on writing into the run's fold folder while the next worker
resumes the same run there. So the worker starts the training through this module: on Linux it
asks the kernel to send the process SIGKILL when its parent dies (`PR_SET_PDEATHSIG`, kept across
`exec`), checks that the parent (PID) is still there, and replaces itself with the command. Where
there is no such call the claim still lists the training's pid, and a claim stays held while that
process lives (`claims.py`). A subprocess' `preexec_fn` could do the same, but it is unsafe in a
process with threads, which a worker with `--jobs` is.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(command: list[str]) -> list[str]:
    """`command` run through this module, as a child of this process."""
    return [sys.executable, "-m", __name__, str(os.getpid()), *command]


def main(argv: list[str]) -> None:
    parent, command = int(argv[0]), argv[1:]
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the call: nothing would kill this one
            sys.exit(f"{command[0]}: the worker that started it has exited")
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
