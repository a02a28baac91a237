"""A tiny BraTS-like nnU-Net raw dataset and the nnU-Net command runner used by integration tests.

Cases are 24^3 volumes with an ellipsoidal "brain" and nested spherical tumours whose parts
show on the contrasts the way BraTS does (enhancing tumour on T1c, edema on T2/FLAIR), small
enough that real nnU-Net planning, training and prediction run in seconds on a CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunet_holder.brats import MODALITIES, NNUNET_LABELS, REGIONS_CLASS_ORDER

# the plans and configuration every test model is trained with (nnU-Net's defaults)
PLANS = "nnUNetPlans"
CONFIGURATION = "3d_fullres"
CHANNELS = {str(i): m for i, m in enumerate(MODALITIES)}
# the same label maps read as plain classes (softmax training): the values `_case` writes
LABEL_CLASSES = {"background": 0, "edema": 1, "necrosis": 2, "enhancing": 3}
SHAPE = (24, 24, 24)
SPACING = (2.0, 2.0, 2.0)
EXPERIMENT_VARIANTS = Path(__file__).resolve().parents[1] / "experiments" / "variants"
"""The records' trainer variants: an extra `nnUNet_extTrainer` folder after the package's own."""


def _case(rng: np.random.Generator, shape: tuple[int, int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    # geometry in units of the volume's half-size, so any shape gives the same picture
    half = np.array(shape) / 2
    zz, yy, xx = (
        g / h
        for g, h in zip(
            np.meshgrid(*[np.arange(s) - s / 2 + 0.5 for s in shape], indexing="ij"), half, strict=True
        )
    )
    brain = (zz / 0.92) ** 2 + (yy / 0.96) ** 2 + (xx / 0.83) ** 2 < 1
    center = rng.uniform(-0.25, 0.25, size=3)
    dist = np.sqrt((zz - center[0]) ** 2 + (yy - center[1]) ** 2 + (xx - center[2]) ** 2)
    r_wt = rng.uniform(0.42, 0.58)
    r_tc = r_wt * rng.uniform(0.5, 0.7)
    r_nc = r_tc * rng.uniform(0.4, 0.7)
    seg = np.zeros(shape, np.uint8)
    seg[(dist < r_wt) & brain] = 1  # edema
    seg[(dist < r_tc) & brain] = 3  # enhancing rim
    seg[(dist < r_nc) & brain] = 2  # necrotic core
    base = {"T1": 1.0, "T1ce": 1.0, "T2": 0.8, "FLAIR": 0.7}
    contrast = {
        "T1": {1: -0.2, 2: -0.4, 3: -0.2},
        "T1ce": {1: -0.1, 2: -0.5, 3: 1.5},
        "T2": {1: 1.0, 2: 1.3, 3: 0.6},
        "FLAIR": {1: 1.2, 2: 0.4, 3: 0.7},
    }
    images = []
    for name in CHANNELS.values():
        img = np.where(brain, base[name], 0.0)
        for label, delta in contrast[name].items():
            img = img + delta * (seg == label)
        img = img + brain * rng.normal(0, 0.1, shape)
        images.append((img * 100).astype(np.float32))
    return np.stack(images), seg


def write_image(array: np.ndarray, path: Path, spacing=SPACING) -> None:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(tuple(float(s) for s in spacing))
    sitk.WriteImage(img, str(path))


def make_raw_dataset(
    raw_root: Path,
    dataset_id: int,
    num_train: int,
    num_test: int,
    seed: int = 0,
    shape: tuple[int, int, int] = SHAPE,
    regions: bool = True,
) -> Path:
    """Write Dataset{id}_Tiny with imagesTr/labelsTr and imagesTs/labelsTs.

    `regions=False` writes a label dataset.json (`LABEL_CLASSES`, no region tuples, no
    regions_class_order) over the same label maps, so nnU-Net trains a softmax over the classes.
    """
    folder = raw_root / f"Dataset{dataset_id:03d}_Tiny"
    rng = np.random.default_rng(seed)
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(num_train + num_test):
        images, seg = _case(rng, shape)
        split = "Tr" if i < num_train else "Ts"
        case = f"tiny_{i:03d}"
        for c in range(images.shape[0]):
            write_image(images[c], folder / f"images{split}" / f"{case}_{c:04d}.nii.gz")
        write_image(seg, folder / f"labels{split}" / f"{case}.nii.gz")
    dataset_json: dict[str, object] = {"channel_names": CHANNELS}
    if regions:
        dataset_json.update(labels=NNUNET_LABELS, regions_class_order=REGIONS_CLASS_ORDER)
    else:
        dataset_json["labels"] = LABEL_CLASSES
    dataset_json.update(numTraining=num_train, file_ending=".nii.gz")
    (folder / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
    return folder


def nnunet_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        nnUNet_raw=str(root / "raw"),
        nnUNet_preprocessed=str(root / "preprocessed"),
        nnUNet_results=str(root / "results"),
        nnUNet_def_n_proc="1",
        nnUNet_compile="false",
        PYTHONUNBUFFERED="1",
    )
    from nnunet_holder.trainer_path import trainer_path

    env["nnUNet_extTrainer"] = str(trainer_path())
    return env


def with_experiment_variants(env: dict[str, str]) -> dict[str, str]:
    """`env` whose `nnUNet_extTrainer` also has the experiment variants, as the records' commands set it."""
    return {**env, "nnUNet_extTrainer": os.pathsep.join([env["nnUNet_extTrainer"], str(EXPERIMENT_VARIANTS)])}


def experiment_variant(name: str) -> type:
    """The experiment variant `name`, found by nnU-Net's own lookup in experiments/variants."""
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    found = recursive_find_python_class(
        str(EXPERIMENT_VARIANTS), name, None, cleanup_imports_from_base_folder=True
    )
    if found is None:
        raise LookupError(f"no trainer {name!r} in {EXPERIMENT_VARIANTS}")
    return found


def run_cli(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    """Run an nnU-Net or nnunet-holder console script from this environment's bin folder."""
    exe = Path(sys.executable).parent / args[0]
    proc = subprocess.run([str(exe), *args[1:]], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode})\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc
