"""Two trainings side by side on the CPU: what nnU-Net's final validation of one does to the other,
with and without the share of the cores that `compare` gives each training (`slot_env`).

`nnunet-holder compare --jobs N` and the demo train N models at once, each with its share of the
cores as torch threads. When a run ends, nnU-Net's `perform_actual_validation` exports its
validation cases through a `spawn` pool of `nnUNet_def_n_proc` workers, then computes the metrics
through another. The workers are fresh interpreters: unless told otherwise, each imports torch with
a thread per core. In one run this script measures a training process (the `3d_small` network at the
demo's 8 mm patch, forward + backward + SGD, one torch thread, timing every step) while, beside it,
the validation's two pool stages run: nnU-Net's own `export_prediction_from_logits` on 7 cases of
random logits, then `compute_metrics_on_folder`. They run alternately with the environment the demo
gave them before (`nnUNet_def_n_proc` = the core count, thread variables unset) and with `slot_env`'s
share for two jobs, `--rounds` times each. Reported: the validation stages' wall time, and the
training's median step time while they run against its median alone.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import brats_dataset_json, brats_plans, emit, machine_line, markdown_table
from cpu_kernels import network

from nnunet_holder.compare.runs import CHILD_THREAD_VARIABLES, slot_env, usable_cores

PATCH = (20, 24, 16)
"""The demo's 3d_small patch at 8 mm."""
CASE_SHAPE = (18, 21, 16)
CASES = 7
"""The demo's fold 0 has 7 validation cases of about this shape."""
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def train(stop: Path) -> None:
    """The training beside the validation: steps until `stop` exists, then (start, end) of each on stdout."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = network(4)
    x = torch.randn(2, 4, *PATCH)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.99)
    steps = []
    while not stop.exists():
        start = time.time()
        opt.zero_grad()
        sum(o.mean() for o in net(x)).backward()
        opt.step()
        steps.append((start, time.time()))
    print(json.dumps(steps))


def validate(out: Path) -> None:
    """nnU-Net's final validation after prediction: the export pool, then the metrics pool."""
    from nnunetv2.configuration import default_num_processes
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.export_prediction import export_prediction_from_logits
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = PlansManager(brats_plans(PATCH))
    configuration = plans.get_configuration("3d_fullres")
    dataset_json = brats_dataset_json()
    labels = plans.get_label_manager(dataset_json)
    spacing = list(configuration.spacing)
    properties = {
        "sitk_stuff": {"spacing": tuple(spacing[::-1]), "origin": (0.0,) * 3, "direction": IDENTITY},
        "spacing": spacing,
        "shape_before_cropping": CASE_SHAPE,
        "bbox_used_for_cropping": [[0, s] for s in CASE_SHAPE],
        "shape_after_cropping_and_before_resampling": CASE_SHAPE,
    }
    torch.manual_seed(0)
    common = (properties, configuration, plans, dataset_json)
    jobs = [(torch.randn(3, *CASE_SHAPE), *common, str(out / f"c{i:03d}"), False) for i in range(CASES)]
    with multiprocessing.get_context("spawn").Pool(default_num_processes) as pool:
        pool.starmap(export_prediction_from_logits, jobs)
    compute_metrics_on_folder(
        str(out), str(out), str(out / "summary.json"), SimpleITKIO(), ".nii.gz",
        labels.foreground_regions, labels.ignore_label, default_num_processes,
    )


def environments() -> dict[str, dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if k not in CHILD_THREAD_VARIABLES}
    return {
        f"nnUNet_def_n_proc={usable_cores()}, thread variables unset (the demo before)": {
            **base, "nnUNet_def_n_proc": str(usable_cores())
        },
        "slot_env's share for 2 jobs (the demo now)": {**base, **slot_env(0, 2, "cpu")},
    }


def median_step(steps: list[tuple[float, float]], windows: list[tuple[float, float]], inside: bool) -> float:
    """Median duration of the steps that overlap one of `windows` (inside) or none of them."""

    def overlaps(s: tuple[float, float]) -> bool:
        return any(s[0] < end and s[1] > start for start, end in windows)

    return statistics.median(e - s for s, e in steps if overlaps((s, e)) is inside)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="validations per environment (alternating)")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--child", choices=["train", "validate"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "train":
        train(args.out)
        return
    if args.child == "validate":
        validate(args.out)
        return
    if usable_cores() < 2:
        raise SystemExit("this benchmark needs at least 2 cores: a training and a validation side by side")

    envs = environments()
    windows: dict[str, list[tuple[float, float]]] = {name: [] for name in envs}
    with tempfile.TemporaryDirectory() as tmp:
        stop = Path(tmp) / "stop"
        trainer = subprocess.Popen(
            [sys.executable, __file__, "--child", "train", "--out", str(stop)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, **slot_env(1, 2, "cpu")},
        )
        time.sleep(15)  # the training alone first
        for r in range(args.rounds):
            for i, (name, env) in enumerate(envs.items()):
                out = Path(tmp) / f"r{r}_{i}"
                out.mkdir()
                start = time.time()
                command = [sys.executable, __file__, "--child", "validate", "--out", str(out)]
                subprocess.run(command, env=env, check=True)
                windows[name].append((start, time.time()))
                print(f"round {r + 1}/{args.rounds}: {name}: {time.time() - start:.1f} s", file=sys.stderr)
                time.sleep(10)  # the training alone again
        stop.touch()
        steps = json.loads(trainer.communicate()[0])
    every = [w for ws in windows.values() for w in ws]
    alone = median_step(steps, every, inside=False)
    rows = []
    for name, ws in windows.items():
        beside = median_step(steps, ws, inside=True)
        walls = ", ".join(f"{e - s:.1f} s" for s, e in ws)
        rows.append((name, walls, f"{beside * 1000:.0f} ms", f"{beside / alone:.2f}"))
    body = ["## Two trainings side by side: one run's final validation beside the other's training\n"]
    body.append(f"Machine: {machine_line(torch.device('cpu'))}.\n")
    body.append(
        f"Training: the `3d_small` PlainConvUNet at the demo's patch {'x'.join(map(str, PATCH))}, batch 2, "
        f"one torch thread, median step alone {alone * 1000:.0f} ms. Validation: nnU-Net's export pool "
        f"on {CASES} cases of shape {'x'.join(map(str, CASE_SHAPE))}, then its metrics pool, "
        f"{args.rounds} rounds per environment, alternating. "
        "Produced by `benchmarks/concurrent_validation.py`.\n\n"
    )
    header = ["validation's environment", "validation wall time", "training step beside it", "vs alone"]
    body.append(markdown_table(header, rows))
    emit("concurrent_validation", "cpu", "".join(body), args.write)


if __name__ == "__main__":
    main()
