"""Training-step time and memory of HolderMITrainer against vanilla nnU-Net on the same BraTS-like plans.

The models are built by the real trainer classes (`HolderMITrainer`, at each `--widths` width,
`HolderMITrainer_featureFusion`, `HolderMITrainer_inputFusion`,
`HolderMITrainer_inputFusion_distill_singlesHalf_sample3`, `nnUNetTrainer`): each trainer's own
`build_network_architecture`, `configure_optimizers` and `_build_loss` (for the vanilla trainer:
DC_and_BCE_loss in nnU-Net's DeepSupervisionWrapper, as for any region dataset), and every step is
the trainer's own `train_step`
(nnU-Net's: autocast fp16 and GradScaler on CUDA, gradient clipping, SGD with momentum;
HolderMITrainer's is the same step with the step's modality subsets passed to the network, all 15
by default; the feature-fusion trainer's, 4 of them with the full set; the input-fusion trainer's, 2 of
them, the full set and one random subset, each a whole pass of nnU-Net's own network; the
3-subset distillation trainer's, 3 such passes and the distillation term).

Per model three figures, measured interleaved in one process (warm-up rounds, then the median over
repeats): the full step; the backbone step (the same step with a trivial loss, the mean of every
deep-supervision output), so that `step - backbone` is what the real loss costs; and the loss alone
(forward + backward of the loss on detached network outputs). Memory: on CUDA the peak allocated
during one step; on every device the bytes of the tensors autograd saves for backward (an exact count
through saved-tensor hooks; the CPU allocator has no peak statistic, and process RSS is dominated by
the allocator's caching), plus parameters, gradients and momentum.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from _common import (
    brats_dataset_json,
    brats_plans,
    emit,
    fmt_seconds,
    machine_line,
    markdown_table,
    parse_device,
    parse_shape,
    synchronize,
    timed,
)
from nnunet_holder.trainers import (
    HolderMITrainer,
    HolderMITrainer_featureFusion,
    HolderMITrainer_inputFusion,
    HolderMITrainer_inputFusion_distill_singlesHalf_sample3,
)
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

SECTION = "train_step"


class OutputMean(nn.Module):
    """The trivial loss: the mean of every deep-supervision output (touches the backbone only)."""

    last_parts: ClassVar[dict] = {}  # HolderMITrainer's train_step logs its loss's parts

    def forward(self, output: dict | list | torch.Tensor, target: object) -> torch.Tensor:
        logits = output["logits"] if isinstance(output, dict) else output
        logits = [logits] if isinstance(logits, torch.Tensor) else logits
        return sum(o.float().mean() for o in logits)


@dataclass
class Model:
    name: str
    trainer: nnUNetTrainer
    params: int
    times: dict[str, list[float]] = field(default_factory=lambda: {"step": [], "backbone": [], "loss": []})
    saved_bytes: int = 0
    cuda_peak: int | None = None

    def median(self, kind: str) -> float:
        return statistics.median(self.times[kind])


def build_trainer(trainer_cls: type[nnUNetTrainer], plans: dict, device: torch.device) -> nnUNetTrainer:
    """A trainer with network, optimizer and loss as its `initialize` builds them (no dataset needed)."""
    plans = {**deepcopy(plans), "continue_training": False}
    with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net's citation banner and device line
        trainer = trainer_cls(plans, "3d_fullres", 0, brats_dataset_json(), device)
    channels = len(trainer.dataset_json["channel_names"])
    trainer.num_input_channels = channels
    trainer.network = trainer.build_network_architecture(
        trainer.plans_manager, trainer.configuration_manager, channels,
        trainer.label_manager.num_segmentation_heads, trainer.enable_deep_supervision,
    ).to(trainer.device)
    trainer.optimizer, trainer.lr_scheduler = trainer.configure_optimizers()
    trainer.loss = trainer._build_loss()
    if isinstance(trainer, HolderMITrainer):
        trainer.init_subset_schedule()
    return trainer


def synthetic_batch(trainer: nnUNetTrainer, batch_size: int, seed: int = 0) -> dict:
    """Random images and nested WT ⊇ TC ⊇ ET balls as bool region targets at every deep-supervision scale."""
    patch = list(trainer.configuration_manager.patch_size)
    g = torch.Generator().manual_seed(seed)
    data = torch.randn(batch_size, trainer.num_input_channels, *patch, generator=g)
    grids = torch.meshgrid(*[torch.linspace(-1, 1, s) for s in patch], indexing="ij")
    radius = torch.sqrt(sum(x**2 for x in grids))
    regions = torch.stack([radius < r for r in (0.6, 0.4, 0.2)])  # WT, TC, ET
    full = regions[None].repeat(batch_size, 1, 1, 1, 1).float()
    targets = []
    for scale in trainer._get_deep_supervision_scales():
        shape = [max(1, round(p * s)) for p, s in zip(patch, scale, strict=True)]
        targets.append(nn.functional.interpolate(full, size=shape, mode="nearest") > 0.5)
    return {"data": data, "target": targets}


def detached_outputs(output: object) -> object:
    """Network outputs as leaf tensors (requiring grad where the output did): the backward stops there."""
    if isinstance(output, torch.Tensor):
        return output.detach().requires_grad_(output.requires_grad)
    if isinstance(output, dict):
        return {k: detached_outputs(v) for k, v in output.items()}
    if isinstance(output, (list, tuple)):
        return type(output)(detached_outputs(v) for v in output)
    return output


def _tensors(output: object) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    return [t for v in output for t in _tensors(v)] if isinstance(output, (list, tuple)) else []


def autocast_context(device: torch.device) -> contextlib.AbstractContextManager:
    # nnU-Net's train_step: autocast only on CUDA (CPU autocast is slow and off in nnU-Net)
    return torch.autocast(device.type, enabled=True) if device.type == "cuda" else contextlib.nullcontext()


class SavedTensorCounter:
    """Bytes of the distinct storages autograd saves for backward while the context is active."""

    def __init__(self) -> None:
        self.storages: dict[int, int] = {}

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        self.storages[storage.data_ptr()] = storage.nbytes()
        return t

    def hooks(self) -> torch.autograd.graph.saved_tensors_hooks:
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    @property
    def total(self) -> int:
        return sum(self.storages.values())


def run_step(trainer: nnUNetTrainer, batch: dict, loss: nn.Module) -> None:
    """One training step of `trainer` (its own `train_step`) with `loss` in place of its own."""
    real = trainer.loss
    trainer.loss = loss
    try:
        trainer.train_step(batch)
    finally:
        trainer.loss = real


def loss_alone(trainer: nnUNetTrainer, batch: dict) -> Callable[[], None]:
    """A callable running forward + backward of the trainer's loss on fixed, detached network outputs."""
    device = trainer.device
    data = batch["data"].to(device)
    target = [t.to(device) for t in batch["target"]]
    with autocast_context(device):
        inputs = (data, trainer._subsets_for_step()) if isinstance(trainer, HolderMITrainer) else (data,)
        outputs = detached_outputs(trainer.network(*inputs))
    leaves = [t for t in _tensors(outputs) if t.requires_grad]

    def run() -> None:
        with autocast_context(device):
            value = trainer.loss(outputs, target)
        value.backward()
        for t in leaves:  # no accumulation across calls, as zero_grad(set_to_none) in a real step
            t.grad = None

    return run


def measure_memory(model: Model, batch: dict) -> None:
    trainer, device = model.trainer, model.trainer.device
    counter = SavedTensorCounter()
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    with counter.hooks():
        run_step(trainer, batch, trainer.loss)
    if device.type == "cuda":
        synchronize(device)
        model.cuda_peak = torch.cuda.max_memory_allocated(device)
    model.saved_bytes = counter.total


def mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.0f}"


def report(models: list[Model], args: argparse.Namespace, device: torch.device, patch: tuple[int, ...]
           ) -> str:
    vanilla = next(m for m in models if m.name.startswith("nnUNetTrainer"))
    rows = []
    for m in models:
        step, backbone, alone = m.median("step"), m.median("backbone"), m.median("loss")
        state = 3 * m.params * 4  # float32 parameters, gradients and SGD momentum
        rows.append([
            m.name, f"{m.params / 1e6:.2f}", fmt_seconds(step), fmt_seconds(backbone),
            fmt_seconds(step - backbone), f"{(step - backbone) / backbone:+.1%}", fmt_seconds(alone),
            f"{alone / backbone:.1%}", f"{step / vanilla.median('step'):.2f}", mib(m.saved_bytes), mib(state),
            mib(m.cuda_peak),
        ])
    header = ["model", "params (M)", "step", "backbone step", "step − backbone", "loss overhead",
              "loss alone", "loss alone / backbone", "step / vanilla", "saved for backward (MiB)",
              "params+grads+momentum (MiB)", "CUDA peak (MiB)"]
    amp = "autocast fp16 + GradScaler" if device.type == "cuda" else "fp32 (nnU-Net uses no autocast on CPU)"
    lines = [
        "## Training step: HolderMITrainer vs vanilla nnU-Net",
        "",
        f"Machine: {machine_line(device)}.",
        "",
        f"Settings: BraTS-like 3d_fullres plans (PlainConvUNet, 6 stages, 32..320 features), patch "
        f"{'×'.join(map(str, patch))}, batch {args.batch}, 4 modalities, 3 regions, deep supervision, "
        f"{amp}, torch.compile off; medians of {args.repeats} interleaved repeats after {args.warmup} "
        "warm-up rounds. `step` is nnU-Net's `train_step` with the trainer's own loss; `backbone step` the "
        "same with the mean of the outputs as loss; `loss overhead` = (step − backbone) / backbone; "
        "`loss alone` = forward + backward of the loss on detached outputs.",
        "",
        markdown_table(header, rows),
    ]
    for m in models:
        if m is vanilla:
            continue
        step, backbone = m.median("step"), m.median("backbone")
        lines.append(
            f"- {m.name}: step = {step / vanilla.median('step'):.2f} × vanilla; loss side adds "
            f"{(step - backbone) / backbone:+.1%} (step − backbone), {m.median('loss') / backbone:.1%} "
            "(loss alone) over its backbone step (budget: ≤ 10 %, benchmarks/README.md)."
        )
    v_step, v_backbone = vanilla.median("step"), vanilla.median("backbone")
    overhead = (v_step - v_backbone) / v_backbone
    lines.append(f"- vanilla nnU-Net: its loss adds {overhead:+.1%} over its backbone step.")
    if device.type != "cuda":
        lines += ["", "Memory on CPU: no allocator peak is available; `saved for backward` counts the "
                  "distinct storages autograd keeps for the backward pass (activations), which with the "
                  "parameter state is what a step holds at its peak."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--patch", default=None,
                        help="patch size, '128' or '128,160,112' (default 128 on cuda, 32 on cpu)")
    parser.add_argument("--batch", type=int, default=2, help="batch size (nnU-Net's BraTS plans: 2)")
    parser.add_argument("--widths", default="0.5,1.0", help="HolderMITrainer widths to measure (0.5, 1.0)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds (3 on cuda, 1 on cpu)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (10 on cuda, 3 on cpu)")
    parser.add_argument("--write", action="store_true",
                        help="replace this benchmark's section of docs/records/benchmarks.md")
    args = parser.parse_args(argv)
    device = parse_device(args.device)
    cuda = device.type == "cuda"
    patch = parse_shape(args.patch or ("128" if cuda else "32"))
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    args.repeats = args.repeats if args.repeats is not None else (10 if cuda else 3)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if cuda:
        torch.backends.cudnn.benchmark = True  # as nnUNetv2_train sets it

    widths = [float(w) for w in args.widths.split(",") if w.strip()]
    plans = brats_plans(patch, args.batch)
    # eager everywhere: nnU-Net would compile the network and its Dice on CUDA, ours and its alike
    os.environ["nnUNet_compile"] = "f"
    with tempfile.TemporaryDirectory() as results:
        os.environ["nnUNet_results"] = results  # the trainers' constructors create their log folders here
        models = []
        for trainer_cls, label in [(nnUNetTrainer, "nnUNetTrainer (vanilla)")] + [
            (HolderMITrainer if w == HolderMITrainer.width
             else type(f"HolderMITrainer_width{w:g}", (HolderMITrainer,), {"width": w}),
             f"HolderMITrainer width {w:g}")
            for w in widths
        ] + [(HolderMITrainer_featureFusion, "HolderMITrainer_featureFusion (mean, "
              f"{HolderMITrainer_featureFusion.subsets_per_step} subsets per step)"),
             (HolderMITrainer_inputFusion, "HolderMITrainer_inputFusion "
              f"({HolderMITrainer_inputFusion.subsets_per_step} subsets per step)"),
             (HolderMITrainer_inputFusion_distill_singlesHalf_sample3,
              "HolderMITrainer_inputFusion_distill_singlesHalf_sample3 (3 subsets per step)")]:
            trainer = build_trainer(trainer_cls, plans, device)
            params = sum(p.numel() for p in trainer.network.parameters())
            models.append(Model(label, trainer, params))
        batch = synthetic_batch(models[0].trainer, args.batch)
        trivial = OutputMean()
        alone = {m.name: loss_alone(m.trainer, batch) for m in models}
        print(f"patch {patch}, batch {args.batch}, device {device}, warm-up {args.warmup}, "
              f"repeats {args.repeats}", file=sys.stderr)
        for r in range(args.warmup + args.repeats):
            for m in models:
                warm = r < args.warmup
                if r == max(args.warmup - 1, 0):
                    # memory on an untimed step (the saved-tensor hooks cost a little), after cuDNN's
                    # autotuning; it stands in for the last warm-up round's step
                    measure_memory(m, batch)
                t_step = None if warm and r == args.warmup - 1 else timed(
                    lambda m=m: run_step(m.trainer, batch, m.trainer.loss), device)
                t_backbone = timed(lambda m=m: run_step(m.trainer, batch, trivial), device)
                t_loss = timed(alone[m.name], device)
                if not warm:
                    for kind, t in (("step", t_step), ("backbone", t_backbone), ("loss", t_loss)):
                        m.times[kind].append(t)
                step_text = "memory" if t_step is None else f"{t_step:.3f} s"
                print(f"  round {r + 1}/{args.warmup + args.repeats}{' (warm-up)' if warm else ''} "
                      f"{m.name}: step {step_text}, backbone {t_backbone:.3f} s, loss alone {t_loss:.3f} s",
                      file=sys.stderr)
    body = report(models, args, device, patch)
    emit(SECTION, device.type, body, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
