"""Throughput of partial-modality prediction of a whole folder: the streaming pipeline against the
chunked route it replaced, measured side by side in one process.

Writes `--cases` small synthetic cases (4 channels, a bright ellipsoid on a zero background, every
third case without its T1ce file) and predicts the folder with an untrained ModalityParallelNet from
BraTS-like plans (`HolderPredictor.manual_initialization`):

- "streaming": `nnunet_holder.predict.pipeline.predict_cases`, the route of `nnunet-holder predict`
  (one preprocessing pool and one export pool for the whole folder);
- "chunked": the route before it (until commit 897b541): the cases read in the main process, then
  nnU-Net's `predict_from_list_of_npy_arrays` on chunks of 8 cases, each chunk starting its own
  preprocessing and export workers.

Rounds alternate between the two; the figure is the median cases per second over the repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from _common import brats_dataset_json, brats_plans, emit, machine_line, markdown_table, parse_shape
from nnunet_holder.trainers import HolderMITrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_holder.predict.inputs import read_case, scan_folder
from nnunet_holder.predict.pipeline import predict_cases
from nnunet_holder.predict.predictor import HolderPredictor

SECTION = "predict_folder"
CHUNK = 8  # the chunk size of the route before the streaming pipeline


def write_cases(folder: Path, n: int, shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    brain = (grid**2).sum(0) < 0.8
    for i in range(n):
        for c in range(4):
            if c == 1 and i % 3 == 0:
                continue  # T1ce never acquired
            img = sitk.GetImageFromArray((brain * (100 + rng.normal(0, 10, shape))).astype(np.float32))
            sitk.WriteImage(img, str(folder / f"case_{i:03d}_{c:04d}.nii.gz"))


def chunked(predictor: HolderPredictor, inp: Path, out: Path, npp: int, nps: int) -> None:
    reader = predictor.plans_manager.image_reader_writer_class()
    ready = []

    def flush() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            predictor.predict_from_list_of_npy_arrays(
                [c.images for c in ready], None, [c.properties for c in ready],
                [str(out / c.case) for c in ready], num_processes=min(npp, len(ready)),
                num_processes_segmentation_export=nps,
            )
        ready.clear()

    for files in scan_folder(inp, ".nii.gz", 4):
        ready.append(read_case(files, reader, 4))
        if len(ready) >= CHUNK:
            flush()
    if ready:
        flush()


def streaming(predictor: HolderPredictor, inp: Path, out: Path, npp: int, nps: int) -> None:
    reports = predict_cases(predictor, scan_folder(inp, ".nii.gz", 4), out, None, npp, nps, progress=False)
    if any(r.status != "ok" for r in reports):
        raise RuntimeError([r.error for r in reports if r.status != "ok"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=50, help="cases in the folder (50)")
    parser.add_argument("--shape", default="32,32,40", help="case size in voxels (32,32,40)")
    parser.add_argument("--patch", default="32", help="plans patch size (32)")
    parser.add_argument("--mirroring", choices=["on", "off"], default="off",
                        help="test-time mirroring (off: the pipeline's own cost shows)")
    parser.add_argument("-npp", type=int, default=2, help="preprocessing processes (2)")
    parser.add_argument("-nps", type=int, default=2, help="export processes (2)")
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds per route (2)")
    parser.add_argument(
        "--write", action="store_true", help="replace this section of docs/records/benchmarks.md"
    )
    args = parser.parse_args(argv)
    shape, patch = parse_shape(args.shape), parse_shape(args.patch)
    plans = brats_plans(patch)
    plans["configurations"]["3d_fullres"]["spacing"] = [1.0, 1.0, 1.0]
    manager = PlansManager(plans)
    config = manager.get_configuration("3d_fullres")
    net = HolderMITrainer.build_network_architecture(manager, config, 4, 3, False).eval()
    with contextlib.redirect_stdout(io.StringIO()):
        predictor = HolderPredictor(use_mirroring=args.mirroring == "on", device=torch.device("cpu"),
                                    allow_tqdm=False, perform_everything_on_device=False)
    predictor.manual_initialization(net, manager, config, None, brats_dataset_json(), "benchmark", (0, 1, 2))
    routes = {"streaming": streaming, "chunked": chunked}
    rates: dict[str, list[float]] = {name: [] for name in routes}
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in"
        inp.mkdir()
        write_cases(inp, args.cases, shape)
        for r in range(args.repeats):
            for name, route in routes.items():
                out = Path(tmp) / f"{name}_{r}"
                out.mkdir()
                start = time.perf_counter()
                route(predictor, inp, out, args.npp, args.nps)
                seconds = time.perf_counter() - start
                written = len(list(out.glob("case_*.nii.gz")))
                if written != args.cases:
                    raise RuntimeError(f"{name}: {written} of {args.cases} segmentations written")
                rates[name].append(args.cases / seconds)
                print(f"  round {r + 1} {name}: {seconds:.1f} s ({args.cases / seconds:.2f} cases/s)",
                      file=sys.stderr)
                shutil.rmtree(out)
    med = {name: statistics.median(v) for name, v in rates.items()}
    rows = [[name, f"{med[name]:.2f}", f"{med[name] / med['chunked']:.2f}"] for name in routes]
    body = "\n".join([
        "## Predicting a folder: streaming pipeline vs chunks of 8",
        "",
        f"Machine: {machine_line(torch.device('cpu'))}.",
        "",
        f"Settings: {args.cases} synthetic cases of {'×'.join(map(str, shape))} voxels (every third without "
        f"T1ce), untrained ModalityParallelNet (BraTS-like plans, patch {'×'.join(map(str, patch))}), "
        f"mirroring "
        f"{args.mirroring}, -npp {args.npp} -nps {args.nps}; median of {args.repeats} alternating rounds per "
        "route, each from reading the files to the last segmentation written.",
        "",
        markdown_table(["route", "cases / s", "ratio to chunked"], rows),
    ]) + "\n"
    emit(SECTION, "cpu", body, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
