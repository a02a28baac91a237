"""Shared pieces of the benchmark scripts: a BraTS-like nnU-Net plans dict, timing, machine description,
and the writer that replaces one script's section of docs/records/benchmarks.md.

The plans mimic what `nnUNetv2_plan_and_preprocess` produces for BraTS at 1 mm (3d_fullres): a
PlainConvUNet with 6 stages and 32..320 features, 3x3x3 kernels, two convolutions per stage, instance
norm, LeakyReLU, batch 2, four channels and the three regions WT/TC/ET. Only the patch size changes
(large on a GPU, small on a CPU); the strides follow nnU-Net's rule of pooling an axis while its
feature map stays at least 4 voxels, so the network has the same parameters at every patch size.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from nnunet_holder.brats import MODALITIES, NNUNET_LABELS, REGIONS_CLASS_ORDER

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "records" / "benchmarks.md"
NUM_STAGES = 6
MAX_FEATURES = 320
_DOC_TITLE = (
    "# Benchmarks\n\nMeasured by the scripts in `benchmarks/` (see `benchmarks/README.md`); every section is "
    "written by its script with `--write` and names the machine it ran on.\n"
)


def parse_shape(text: str) -> tuple[int, int, int]:
    """'64' -> (64, 64, 64); '128,160,112' -> (128, 160, 112)."""
    parts = [int(p) for p in re.split(r"[,x]", text.strip()) if p]
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3 or min(parts) < 1:
        raise ValueError(f"expected one or three positive sizes, got {text!r}")
    return parts[0], parts[1], parts[2]


def stage_strides(patch: Sequence[int], num_stages: int = NUM_STAGES) -> list[list[int]]:
    """nnU-Net-style strides: stage 0 keeps the resolution; later stages halve an axis while it is even
    and the halved map stays >= 4 voxels, else keep it (stride 1)."""
    sizes = list(patch)
    strides = [[1] * len(sizes)]
    for _ in range(1, num_stages):
        stage = []
        for a, size in enumerate(sizes):
            pool = size % 2 == 0 and size // 2 >= 4
            stage.append(2 if pool else 1)
            sizes[a] = size // 2 if pool else size
        strides.append(stage)
    return strides


def brats_plans(patch: Sequence[int], batch_size: int = 2, num_stages: int = NUM_STAGES) -> dict:
    """A 3d_fullres nnU-Net plans dict for BraTS-like data with this patch size (see the module docstring)."""
    arch_kwargs = {
        "n_stages": num_stages,
        "features_per_stage": [min(32 * 2**i, MAX_FEATURES) for i in range(num_stages)],
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [[3, 3, 3]] * num_stages,
        "strides": stage_strides(patch, num_stages),
        "n_conv_per_stage": [2] * num_stages,
        "n_conv_per_stage_decoder": [2] * (num_stages - 1),
        "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }
    interpolation = {"order_z": 0, "force_separate_z": None}
    config = {
        "data_identifier": "nnUNetPlans_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": batch_size,
        "patch_size": list(patch),
        "median_image_size_in_voxels": [140.0, 171.0, 137.0],
        "spacing": [1.0, 1.0, 1.0],
        "normalization_schemes": ["ZScoreNormalization"] * 4,
        "use_mask_for_norm": [True] * 4,
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, **interpolation},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, **interpolation},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, **interpolation},
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": arch_kwargs,
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        },
        "batch_dice": False,
    }
    intensity = {"max": 1.0, "mean": 0.0, "median": 0.0, "min": 0.0, "percentile_00_5": 0.0,
                 "percentile_99_5": 1.0, "std": 1.0}
    return {
        "dataset_name": "Dataset999_BenchmarkBraTS",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": [140, 171, 137],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": config},
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {str(c): dict(intensity) for c in range(4)},
    }


def brats_dataset_json() -> dict:
    """dataset.json of a converted BraTS dataset: four channels, three sigmoid regions."""
    return {
        "channel_names": {str(i): m for i, m in enumerate(MODALITIES)},
        "labels": dict(NNUNET_LABELS),
        "regions_class_order": list(REGIONS_CLASS_ORDER),
        "numTraining": 0,
        "file_ending": ".nii.gz",
    }


def parse_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call, with the device queue drained before and after (CUDA runs asynchronously)."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's name, family/model and widest vector extension, from /proc/cpuinfo.

    Hosts that report the same name ("AMD EPYC") differ several-fold in 3D-convolution speed
    (docs/records/benchmarks.md, "CPU kernels"), so every timing names the extension it ran with.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    details = []
    if "cpu family" in fields and "model" in fields:
        details.append(f"family {fields['cpu family']} model {fields['model']}")
    if vector:
        details.append(vector)
    return f"{name} ({', '.join(details)})" if details else name


def machine_line(device: torch.device) -> str:
    """One line naming the machine, the software and the date, for the docs section."""
    parts = [f"CPU {cpu_model()}, {os.cpu_count()} cores (torch threads {torch.get_num_threads()})"]
    if device.type == "cuda":
        parts.append(f"GPU {torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})")
    parts.append(f"device {device.type}")
    parts.append(f"torch {torch.__version__}")
    try:
        from importlib.metadata import PackageNotFoundError, version

        parts.append(f"nnunetv2 {version('nnunetv2')}")
    except PackageNotFoundError:
        pass
    parts.append(f"date {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    return "; ".join(parts)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)  # first column text, the others numbers
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- benchmark:{name}:begin -->", f"<!-- benchmark:{name}:end -->"


def write_section(name: str, body: str, path: Path = DOCS) -> Path:
    """Replace the section `name` of the Markdown file (between its marker comments), or append it.

    Other sections and any text outside the markers are kept, so each script owns only its section.
    """
    begin, end = _markers(name)
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else _DOC_TITLE
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def emit(section: str, device_type: str, body: str, write: bool) -> None:
    """Print a benchmark's Markdown; with `write`, record it as the section `section:device_type`.

    One section per device, so a CPU check never replaces the GPU figures.
    """
    print(body)
    if write:
        print(f"written to {write_section(f'{section}:{device_type}', body)}", file=sys.stderr)


def fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"
