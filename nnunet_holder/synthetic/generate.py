"""Synthetic BraTS-like cases and datasets: anatomy + tumour + contrasts, written in a real BraTS layout.

A case depends only on (seed, case index, spacing): each case seeds its own generator, so a dataset is
the same whatever the number of worker processes. The dataset is built in a temporary folder beside
the output and renamed into place when complete; an existing output is replaced only with `overwrite`
and only when it is a previous synthetic dataset (it holds `synthetic_dataset.json`).
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nnunet_holder.brats import BRATS_LABEL_NAMES
from nnunet_holder.synthetic.anatomy import Anatomy, Grid, sample_anatomy
from nnunet_holder.synthetic.contrasts import render
from nnunet_holder.synthetic.missing import drop_plan
from nnunet_holder.synthetic.tumour import Tumour, TumourKind, grow_tumour
from nnunet_holder.synthetic.writer import LAYOUT_NAMES, case_id, write_case, write_name_mapping

MARKER = "synthetic_dataset.json"

# BraTS 2018-2021 labels; the writer maps them to the 2023 ones for that layout
_LABEL = {name: value for value, name in BRATS_LABEL_NAMES["2018"].items()}
NCR_NET, EDEMA, ENHANCING = _LABEL["NCR/NET"], _LABEL["ED"], _LABEL["ET"]


@dataclass
class SyntheticCase:
    index: int
    grid: Grid
    anatomy: Anatomy
    tumour: Tumour
    images: dict[str, np.ndarray]  # contrast -> int16 (x, y, z)
    labels: np.ndarray  # uint8 (x, y, z), BraTS 2018-2021 labels

    @property
    def grade(self) -> str:
        return "HGG" if self.tumour.kind.enhancing else "LGG"


def synthesize_case(index: int, spacing: float = 1.0, seed: int = 0) -> SyntheticCase:
    """One case in memory (arrays in (x, y, z) order, as on disk after SimpleITK's transpose)."""
    rng = np.random.default_rng([seed, index])
    grid = Grid.brats(spacing)
    anatomy = sample_anatomy(grid, rng)
    tumour = grow_tumour(anatomy, TumourKind.for_case(index), rng)
    images = render(anatomy, tumour, rng)
    labels = np.zeros(grid.shape, dtype=np.uint8)
    labels[tumour.edema_mask] = EDEMA
    labels[tumour.solid_mask] = ENHANCING if tumour.kind.enhancing else NCR_NET
    labels[tumour.necrosis_mask] = NCR_NET
    return SyntheticCase(index, grid, anatomy, tumour, images, labels)


def _make_case(task: tuple[int, float, int, str, Path, tuple[str, ...]]) -> tuple[str, str]:
    index, spacing, seed, layout, folder, omit = task
    case = synthesize_case(index, spacing, seed)
    write_case(case.images, case.labels, case.grid, layout, index, folder, omit)
    return case_id(layout, index), case.grade


def _prepare_output(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    if not any(out_dir.iterdir()):
        return
    if not (out_dir / MARKER).is_file():
        raise FileExistsError(
            f"{out_dir} is not empty and is not a synthetic dataset ({MARKER} missing); not touching it"
        )
    if not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds a synthetic dataset; pass --overwrite (overwrite=True) to replace it"
        )


def _swap_in(built: Path, out_dir: Path) -> None:
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        out_dir.rename(old)
        built.rename(out_dir)
        shutil.rmtree(old)
    else:
        built.rename(out_dir)


def generate_dataset(
    out_dir: Path | str,
    num_cases: int,
    spacing: float = 1.0,
    seed: int = 0,
    layout: str = "brats2020",
    overwrite: bool = False,
    num_processes: int = 1,
    progress: bool = True,
    incomplete_fraction: float = 0.0,
    keep_complete: int = 0,
) -> Path:
    """Write `num_cases` synthetic cases in a BraTS `layout` ('brats2020' or 'brats2023'); returns out_dir.

    With `incomplete_fraction`, that fraction of the cases but the last `keep_complete` lack one or two
    modality files (`missing.drop_plan`; the manifest lists them); the images written are the same.
    """
    if layout not in LAYOUT_NAMES:
        raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUT_NAMES)}")
    if num_cases < 1:
        raise ValueError(f"num_cases must be at least 1, got {num_cases}")
    plan = drop_plan(num_cases, incomplete_fraction, seed, keep_complete)
    grid = Grid.brats(spacing)
    out_dir = Path(out_dir)
    _prepare_output(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        tasks = [(i, spacing, seed, layout, build, plan.get(i, ())) for i in range(num_cases)]
        bar = tqdm(total=num_cases, desc="synth", unit="case", disable=not progress)
        if num_processes <= 1 or num_cases == 1:
            results = []
            for task in tasks:
                results.append(_make_case(task))
                bar.update()
        else:
            with multiprocessing.get_context("spawn").Pool(min(num_processes, num_cases)) as pool:
                results = []
                for result in pool.imap(_make_case, tasks):
                    results.append(result)
                    bar.update()
        bar.close()
        if layout == "brats2020":
            write_name_mapping(build, results)
        manifest = {
            "generator": "nnunet-holder synth",
            "layout": layout,
            "num_cases": num_cases,
            "spacing_mm": spacing,
            "shape": list(grid.shape),
            "seed": seed,
            "cases": {cid: grade for cid, grade in results},
            "absent": {case_id(layout, i): list(roles) for i, roles in plan.items()},
            "anatomy": "MNI ICBM152 2009a symmetric template and tissue maps shipped with nilearn "
            "(Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre, MNI, McGill University)",
        }
        (build / MARKER).write_text(json.dumps(manifest, indent=2) + "\n")
        _swap_in(build, out_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return out_dir
