"""Why CPU hosts differ on the experiment scale, and what a 2-core CPU can do about it.

The network is the `3d_small` one of docs/records/synthetic_comparison.md (PlainConvUNet, 3 stages, 16/32/64
features, 3x3x3 kernels, instance norm, deep supervision) on its patch (24x28x24, batch 2), built two
ways: vanilla nnU-Net's (4 input channels) and the modality-parallel encoder's input (the 4
modalities folded into the batch: 8 samples of 1 channel). A step is forward, backward and an SGD
update. Three measurements, all in one run:

1. Which oneDNN kernel runs each convolution pass (forward, backward data, backward weights) and how
   long it takes, from oneDNN's own verbose log of two steps in a child process (`ONEDNN_VERBOSE=1`).
2. Step time in nnU-Net's memory layout (NCDHW) and in channels-last (NDHWC), with 1 and 2 torch
   threads, interleaved round by round, medians.
3. Throughput of two training processes side by side with one thread each against one process with
   two threads (what `compare` could gain by training two runs at once on a 2-core machine): each
   child times its own steps while the other runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict

import torch
from _common import emit, machine_line, markdown_table

PATCH = (24, 28, 24)
SHAPES = {"vanilla (2 x 4 channels)": (2, 4), "folded modalities (8 x 1 channel)": (8, 1)}


def network(in_channels: int) -> torch.nn.Module:
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    return PlainConvUNet(
        in_channels, 3, [16, 32, 64], torch.nn.Conv3d, 3, [1, 2, 2], [2, 2, 2], 3, [2, 2], False,
        torch.nn.InstanceNorm3d, {"eps": 1e-5, "affine": True}, None, None, torch.nn.LeakyReLU,
        {"inplace": True}, deep_supervision=True,
    )


def stepper(batch: int, channels: int, channels_last: bool):
    torch.manual_seed(0)
    net = network(channels)
    x = torch.randn(batch, channels, *PATCH)
    if channels_last:
        net = net.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.99)

    def step() -> None:
        opt.zero_grad()
        sum(o.mean() for o in net(x)).backward()
        opt.step()

    return step


def child(args: argparse.Namespace) -> None:
    """One process's part: `--child steps` times its steps, `--child verbose` runs two for oneDNN's log."""
    torch.set_num_threads(args.threads)
    batch, channels = SHAPES[args.shape]
    step = stepper(batch, channels, channels_last=False)
    step()
    if args.child == "verbose":
        step()
        return
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps(times))


def spawn(mode: str, shape: str, threads: int, steps: int = 0, env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, __file__, "--child", mode, "--shape", shape, "--threads", str(threads)]
    return subprocess.Popen(
        [*command, "--steps", str(steps)], stdout=subprocess.PIPE, text=True, env=env or dict(os.environ)
    )


def kernels(shape: str) -> list[tuple[str, str, float, int]]:
    """(implementation, pass, ms, calls) of every convolution in two steps, from oneDNN's verbose log."""
    proc = spawn("verbose", shape, 1, env={**os.environ, "ONEDNN_VERBOSE": "1"})
    out, _ = proc.communicate()
    totals: dict[tuple[str, str], list[float]] = defaultdict(list)
    for line in out.splitlines():
        fields = line.split(",")
        if len(fields) > 8 and fields[2:4] == ["primitive", "exec"] and fields[5] == "convolution":
            totals[(fields[6], fields[7])].append(float(fields[-1]))
    return sorted(((impl, p, sum(t), len(t)) for (impl, p), t in totals.items()), key=lambda r: -r[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=12, help="steps per process in the side-by-side test")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--child", choices=["steps", "verbose"], help=argparse.SUPPRESS)
    parser.add_argument("--shape", choices=list(SHAPES), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    body = ["## CPU kernels of the experiment scale: layouts, threads, two runs side by side\n"]
    body.append(f"Machine: {machine_line(torch.device('cpu'))}.\n")
    body.append(
        "Network: the `3d_small` PlainConvUNet (16/32/64 features, 3 stages), patch "
        f"{'x'.join(map(str, PATCH))}, forward + backward + SGD; medians. "
        "Produced by `benchmarks/cpu_kernels.py`.\n"
    )
    for shape in SHAPES:
        print(f"oneDNN kernels, {shape}", file=sys.stderr)
        rows = kernels(shape)
        total = sum(r[2] for r in rows)
        body.append(f"\n**oneDNN's convolution kernels, {shape}, 1 thread, two steps:**\n")
        body.append(markdown_table(
            ["kernel", "pass", "calls", "ms", "share"],
            [(f"`{i}`", p, n, f"{t:.1f}", f"{100 * t / total:.0f} %") for i, p, t, n in rows],
        ))

    timings: dict[tuple[str, bool, int], list[float]] = defaultdict(list)
    steps = {(s, cl): stepper(*SHAPES[s], channels_last=cl) for s in SHAPES for cl in (False, True)}
    for r in range(args.repeats + 1):  # round 0 warms up
        for (shape, cl), step in steps.items():
            for threads in (1, 2):
                torch.set_num_threads(threads)
                start = time.perf_counter()
                step()
                if r:
                    timings[(shape, cl, threads)].append(time.perf_counter() - start)
        print(f"layouts: round {r}/{args.repeats}", file=sys.stderr)
    body.append("\n**Step time by memory layout and threads (one process):**\n")
    rows = []
    for shape in SHAPES:
        base = statistics.median(timings[(shape, False, 2)])
        for cl in (False, True):
            for threads in (1, 2):
                t = statistics.median(timings[(shape, cl, threads)])
                layout = "channels-last (NDHWC)" if cl else "NCDHW (nnU-Net's)"
                rows.append((shape, layout, threads, f"{t * 1000:.0f} ms", f"{base / t:.2f}"))
    body.append(markdown_table(["network", "layout", "threads", "step", "speed vs NCDHW, 2 threads"], rows))

    body.append(f"\n**Two processes with 1 thread each, side by side, against one with 2 threads** "
                f"({args.steps} steps per process, after one warm-up step):\n")
    rows = []
    for shape in SHAPES:
        one = spawn("steps", shape, 2, args.steps)
        single = statistics.median(json.loads(one.communicate()[0]))
        pair = [spawn("steps", shape, 1, args.steps) for _ in range(2)]
        each = [statistics.median(json.loads(p.communicate()[0])) for p in pair]
        throughput = (1 / each[0] + 1 / each[1]) / (1 / single)
        rows.append((shape, f"{single * 1000:.0f} ms", " / ".join(f"{e * 1000:.0f} ms" for e in each),
                     f"{throughput:.2f}"))
        print(f"side by side: {shape} done", file=sys.stderr)
    body.append(markdown_table(
        ["network", "step, 1 process x 2 threads", "step of each, 2 processes x 1 thread",
         "throughput of the pair / the single"], rows))
    emit("cpu_kernels", "cpu", "".join(body), args.write)


if __name__ == "__main__":
    main()
