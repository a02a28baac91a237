"""Checks of `predict`'s input and output folders that run before any model is loaded.

The output folder must be creatable and writable, so that a read-only folder or a path through
a regular file is refused in one line instead of failing at the first write, after the model
has loaded. It must also be apart from the input folder: outputs are named `CASE<ending>`, and
in a folder holding a case `pat` and a case `pat_0002`, `pat_0002`'s segmentation is named like
`pat`'s channel 2, so writing into the input folder could replace an input image. Nothing here
imports torch, so these refusals come at once.
"""

from __future__ import annotations

import os
from pathlib import Path


def check_output_folder(output: Path, flag: str = "-o") -> None:
    """Refuse (SystemExit, one line) an output folder that cannot be created or written."""
    if output.exists() and not output.is_dir():
        raise SystemExit(f"{flag} {output}: exists and is not a folder")
    existing = output
    while not existing.exists():  # the folder that the missing ones would be created in
        existing = existing.parent
    if not existing.is_dir():
        raise SystemExit(f"{flag} {output}: {existing} is a file, so no folder can be created under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            why = "it is on a read-only file system"
        else:
            why = "permission denied"
        action = "write into" if existing == output else "create a folder in"
        raise SystemExit(f"{flag} {output}: cannot {action} {existing}: {why}")


def check_apart(input_dir: Path, output: Path, file_ending: str) -> None:
    """Refuse an output folder that is the input folder, or that holds one of its files (a link)."""
    if not (input_dir.is_dir() and output.is_dir()):
        return  # a missing input folder is refused where the cases are listed; a new output is apart
    if os.path.samefile(input_dir, output):
        raise SystemExit(
            f"-o {output} is the input folder -i {input_dir}: a segmentation can have the name of an input "
            f"file and replace it (case pat_0002's pat_0002{file_ending} is case pat's channel 2); "
            "choose another output folder"
        )
    inputs = {_identity(p): p for p in input_dir.iterdir() if p.is_file()}
    for path in output.iterdir():
        if path.is_file() and (same := inputs.get(_identity(path))) is not None:
            raise SystemExit(
                f"-o {output}: {path.name} is the input file {same} (a link); writing the outputs could "
                "replace it, choose another output folder"
            )


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino
