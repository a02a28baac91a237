"""Inference time of the modality-parallel networks against the number of available modalities, and
the cost of evaluating all 15 modality subsets, through nnU-Net's sliding window.

The paper's ModalityParallelNet (`HolderMITrainer`), the feature-fusion network
(`HolderMITrainer_featureFusion`), the input-fusion network (`HolderMITrainer_inputFusion`: nnU-Net's
own U-Net with the absent channels zeroed, so one image pass whatever k) and a vanilla PlainConvUNet,
built from the same BraTS-like plans
(eval mode, deep supervision off, untrained random weights), are handed to
`HolderPredictor.manual_initialization`, as a trainer does for its final validation, and run on a
synthetic preprocessed volume (4 channels, standard normal). Figures, measured interleaved in one
process (warm-up round, then the median over repeats):

- `predict_logits_from_preprocessed_data` with k = 1..4 channels non-zero (the predictor reads the
  available modalities off the data, so only those run): ratio to k = 4 (budget: k/4 + 0.1), with
  the test-time mirrors folded into batches of at most `batch_limit` image passes (the default,
  "batched"), all 8 copies in one call ("all copies") and one network call per mirror ("sequential",
  nnU-Net's loop), and the largest logit difference between batched and sequential;
- `subset_logits` (all 15 subsets from one pass) against one full-modality prediction (budget: 1.5x)
  and against 15 separate predictions, one per subset with the others zero-filled;
- the vanilla network: one full prediction, and its 15 zero-filled passes (`subset_logits` falls back
  to them for a network that cannot split modalities).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import statistics
import sys
from collections.abc import Callable

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
    timed,
)
from nnunet_holder.trainers import HolderMITrainer, HolderMITrainer_featureFusion, HolderMITrainer_inputFusion
from nnunetv2.inference.sliding_window_prediction import compute_steps_for_sliding_window
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_holder.brats import SHORT_MODALITIES
from nnunet_holder.evaluate.one_pass import subset_logits
from nnunet_holder.predict.predictor import HolderPredictor
from nnunet_holder.subsets import all_subsets, subset_name

SECTION = "inference"
NUM_MODALITIES = 4
MIRROR_AXES = (0, 1, 2)


def make_predictor(network: torch.nn.Module, plans: dict, device: torch.device, mirroring: bool,
                   tile_step: float) -> HolderPredictor:
    """A HolderPredictor around `network`, initialised the way a trainer hands over its network."""
    plans_manager = PlansManager(plans)
    with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net's notice that CPU results stay on the CPU
        predictor = HolderPredictor(
            tile_step_size=tile_step, use_gaussian=True, use_mirroring=mirroring,
            perform_everything_on_device=device.type == "cuda", device=device, verbose=False,
            verbose_preprocessing=False, allow_tqdm=False,
        )
    predictor.manual_initialization(network.to(device).eval(), plans_manager,
                                    plans_manager.get_configuration("3d_fullres"), None, brats_dataset_json(),
                                    "benchmark", MIRROR_AXES)
    return predictor


def build_networks(plans: dict, width: float) -> dict[str, torch.nn.Module]:
    """The paper's network at `width`, the feature- and input-fusion networks and vanilla nnU-Net
    (inference form)."""
    plans_manager = PlansManager(plans)
    config = plans_manager.get_configuration("3d_fullres")
    heads = plans_manager.get_label_manager(brats_dataset_json()).num_segmentation_heads
    holder_cls = HolderMITrainer if width == HolderMITrainer.width else type(
        f"HolderMITrainer_w{width:g}", (HolderMITrainer,), {"width": width})
    return {
        name: cls.build_network_architecture(plans_manager, config, NUM_MODALITIES, heads, False)
        for name, cls in (("Holder", holder_cls), ("feature fusion", HolderMITrainer_featureFusion),
                          ("input fusion", HolderMITrainer_inputFusion), ("vanilla", nnUNetTrainer))
    }


def with_only(data: torch.Tensor, subset: tuple[int, ...]) -> torch.Tensor:
    """The volume with every channel outside `subset` zero (a missing modality after preprocessing)."""
    masked = data.clone()
    masked[[i for i in range(data.shape[0]) if i not in subset]] = 0
    return masked


def separate_predictions(predictor: HolderPredictor, data: torch.Tensor
                         ) -> dict[tuple[int, ...], torch.Tensor]:
    """One prediction per subset, each with only that subset's channels non-zero."""
    return {s: predictor.predict_logits_from_preprocessed_data(with_only(data, s))
            for s in all_subsets(data.shape[0])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--patch", default=None, help="plans patch size (128 on cuda, 32 on cpu)")
    parser.add_argument("--shape", default=None,
                        help="preprocessed volume size (on cuda 140,171,137, BraTS's median after "
                        "cropping; on cpu 32,32,48)")
    parser.add_argument("--mirroring", choices=["on", "off"], default="on",
                        help="test-time mirroring over the 3 axes (on, as nnU-Net predicts)")
    parser.add_argument("--width", type=float, default=HolderMITrainer.width, help="backbone width (0.5)")
    parser.add_argument("--tile-step", type=float, default=0.5, help="sliding-window step (nnU-Net: 0.5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds (1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (3)")
    parser.add_argument("--write", action="store_true",
                        help="replace this benchmark's section of docs/records/benchmarks.md")
    args = parser.parse_args(argv)
    device = parse_device(args.device)
    cuda = device.type == "cuda"
    patch = parse_shape(args.patch or ("128" if cuda else "32"))
    shape = parse_shape(args.shape or ("140,171,137" if cuda else "32,32,48"))
    mirroring = args.mirroring == "on"
    repeats = args.repeats
    if repeats < 1:
        parser.error("--repeats must be >= 1")
    if cuda:
        torch.backends.cudnn.benchmark = True
    os.environ["nnUNet_compile"] = "f"  # manual_initialization would otherwise compile on request

    plans = brats_plans(patch)
    nets = build_networks(plans, args.width)
    predictors = {name: make_predictor(net, plans, device, mirroring, args.tile_step)
                  for name, net in nets.items()}
    parallel = [name for name in nets if name != "vanilla"]
    vanilla = predictors["vanilla"]
    data = torch.randn(NUM_MODALITIES, *shape, generator=torch.Generator().manual_seed(0))
    subsets = all_subsets(NUM_MODALITIES)
    names = SHORT_MODALITIES
    by_k = {k: next(s for s in subsets if len(s) == k) for k in range(1, NUM_MODALITIES + 1)}
    inputs = {k: with_only(data, s) for k, s in by_k.items()}
    default_limit = predictors["Holder"].batch_limit
    modes = {"batched": default_limit, "all copies": 8 * NUM_MODALITIES, "sequential": 1}
    if not mirroring:
        modes = {"batched": default_limit}

    outputs: dict[str, object] = {}

    def keep(name: str, fn: Callable[[], object]) -> Callable[[], None]:
        return lambda: outputs.__setitem__(name, fn())

    def predict(net: str, k: int, batch_limit: int) -> torch.Tensor:
        predictors[net].batch_limit = batch_limit
        return predictors[net].predict_logits_from_preprocessed_data(inputs[k])

    measures: dict[str, Callable[[], None]] = {}
    for net in parallel:
        for mode, batch_limit in modes.items():
            for k in by_k:
                key = f"{net} k={k} {mode}"
                measures[key] = keep(key, lambda net=net, k=k, b=batch_limit: predict(net, k, b))
        measures[f"{net} one_pass"] = keep(f"{net} one_pass",
                                           lambda net=net: subset_logits(predictors[net], data))
        measures[f"{net} separate"] = keep(f"{net} separate",
                                           lambda net=net: separate_predictions(predictors[net], data))
    measures["vanilla_full"] = keep("vanilla_full",
                                    lambda: vanilla.predict_logits_from_preprocessed_data(data))
    measures["vanilla_15"] = keep("vanilla_15", lambda: subset_logits(vanilla, data))
    # every input shape once (cuDNN tuning, oneDNN primitive caches)
    warm = [m for m in measures if " k=" in m or m.endswith("one_pass") or m == "vanilla_full"]
    times: dict[str, list[float]] = {name: [] for name in measures}
    print(f"patch {patch}, volume {shape}, mirroring {mirroring}, device {device}, warm-up {args.warmup}, "
          f"repeats {repeats}", file=sys.stderr)
    for r in range(args.warmup + repeats):
        for name, fn in measures.items():
            if r < args.warmup and name not in warm:
                continue
            if name.endswith("separate") and r != args.warmup + repeats - 1 and repeats > 1:
                continue  # 15 predictions: timed once, in the last round
            t = timed(fn, device)
            if r >= args.warmup:
                times[name].append(t)
            print(f"  round {r + 1}/{args.warmup + repeats} {name}: {t:.3f} s", file=sys.stderr)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    padded = [max(a, b) for a, b in zip(shape, patch, strict=True)]  # nnU-Net pads a smaller volume
    tiles = math.prod(len(s) for s in compute_steps_for_sliding_window(padded, patch, args.tile_step))
    header = ["prediction", "time", "ratio to k = 4 (same network, same mirroring)", "budget k/4 + 0.1",
              "within budget"]
    rows, notes = [], []
    for net in parallel:
        # the budgets are for networks whose cost follows the available modalities; input fusion runs
        # one whole pass per image whatever k, and one per subset for the 15 subsets
        per_modality = nets[net].image_passes(1) < nets[net].image_passes(NUM_MODALITIES)
        for mode in modes:
            full = med[f"{net} k={NUM_MODALITIES} {mode}"]
            for k, s in by_k.items():
                budget = k / NUM_MODALITIES + 0.1
                t = med[f"{net} k={k} {mode}"]
                judged = [f"≤ {budget:.2f}", "yes" if t / full <= budget else "no"] if per_modality else [
                    "n/a (one pass whatever k)", ""]
                rows.append([f"{net}, k = {k} ({subset_name(s, names)}), mirrors {mode}", fmt_seconds(t),
                             f"{t / full:.2f}", *judged])
        full = med[f"{net} k={NUM_MODALITIES} batched"]
        one = med[f"{net} one_pass"]
        rows.append([f"{net}, all 15 subsets, one pass (`subset_logits`)", fmt_seconds(one),
                     f"{one / full:.2f}",
                     *(["≤ 1.50", "yes" if one / full <= 1.5 else "no"] if per_modality else [
                         "n/a (one pass per subset)", ""])])
        rows.append([f"{net}, 15 separate predictions", fmt_seconds(med[f"{net} separate"]),
                     f"{med[f'{net} separate'] / full:.2f}", "", ""])
        one_pass, separate = outputs[f"{net} one_pass"], outputs[f"{net} separate"]
        max_diff = max(float((one_pass[s] - separate[s]).abs().max()) for s in subsets)
        notes.append(f"- {net}: 15 subsets in one pass {med[f'{net} separate'] / one:.1f} × faster than 15 "
                     f"separate predictions, max |logit difference| {max_diff:.2e}.")
        if mirroring:
            diff = max(
                float((outputs[f"{net} k={k} batched"] - outputs[f"{net} k={k} sequential"]).abs().max())
                for k in by_k)
            speed = [med[f"{net} k={k} sequential"] / med[f"{net} k={k} batched"] for k in by_k]
            notes.append(f"- {net}: mirrors batched (≤ {default_limit} image passes per call) vs one "
                         "call per mirror: "
                         + ", ".join(f"k = {k} {v:.2f} ×" for k, v in zip(by_k, speed, strict=True))
                         + f" faster; max |logit difference| {diff:.2e}.")
    holder_full = med[f"Holder k={NUM_MODALITIES} batched"]
    rows.append(["vanilla nnU-Net, full modalities", fmt_seconds(med["vanilla_full"]),
                 f"{med['vanilla_full'] / holder_full:.2f} (of Holder's)", "", ""])
    rows.append(["vanilla nnU-Net, 15 zero-filled passes", fmt_seconds(med["vanilla_15"]),
                 f"{med['vanilla_15'] / holder_full:.2f} (of Holder's)", "", ""])
    body = "\n".join([
        "## Inference: available modalities and all-subset evaluation",
        "",
        f"Machine: {machine_line(device)}.",
        "",
        f"Settings: BraTS-like 3d_fullres plans (6 stages, 32..320 features), Holder width {args.width:g}, "
        "feature fusion with its default (masked mean, full width), input fusion (full width), untrained "
        f"weights, patch "
        f"{'×'.join(map(str, patch))}, preprocessed volume "
        f"{'×'.join(map(str, shape))} ({tiles} tile{'s' * (tiles != 1)} at step {args.tile_step:g}), "
        f"mirroring {'on (8 copies per tile)' if mirroring else 'off'}, "
        f"{'fp16 autocast' if cuda else 'fp32'}, HolderPredictor (nnU-Net's sliding window, Gaussian "
        f"weighting); medians of {repeats} interleaved repeats after {args.warmup} warm-up round(s) "
        "(15 separate predictions: once).",
        "",
        markdown_table(header, rows),
        *notes,
    ]) + "\n"
    emit(SECTION, device.type, body, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
