"""Sharing one folder between several runs: nnU-Net's `-num_parts N -part_id K`, and safe writes.

nnU-Net splits the sorted case list of a folder as `cases[part_id::num_parts]`, so N machines
(or GPUs) that are each given one part id predict disjoint cases into the same output folder.
`predict` and `evaluate-subsets` split the same way; each part writes its own report or manifest
(`Part.suffix`), which `nnunet-holder merge-parts` joins. Every shared file is written under a
temporary name and renamed, so a reader (or an interruption) never sees half of one. The
`merge-parts` command lives in merge_parts.py, which imports the prediction and evaluation code
that import this module.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Part:
    """This run's share of the cases."""

    part_id: int = 0
    num_parts: int = 1

    def __post_init__(self) -> None:
        if self.num_parts < 1 or not 0 <= self.part_id < self.num_parts:
            raise SystemExit(
                f"-part_id {self.part_id} -num_parts {self.num_parts}: part ids run from 0 to num_parts - 1"
            )

    def select(self, items: Sequence) -> list:
        """This part's items of the sorted `items`, as nnU-Net picks them."""
        return list(items)[self.part_id :: self.num_parts]

    @property
    def suffix(self) -> str:
        """'' for a single run, '_part_K_of_N' otherwise (file names of the part's own outputs)."""
        return "" if self.num_parts == 1 else f"_part_{self.part_id}_of_{self.num_parts}"

    @staticmethod
    def from_suffix(stem: str) -> Part:
        """The part a file stem ending in `_part_K_of_N` belongs to."""
        k, n = stem.rsplit("_part_", 1)[1].split("_of_")
        return Part(int(k), int(n))


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`.

    The temporary name is this writer's own (host, process, thread), so writers of the same file on
    several machines or threads never write into one temporary file; the last rename wins whole.
    """
    temp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{threading.get_ident()}.tmp")
    temp.write_text(text)
    os.replace(temp, path)
