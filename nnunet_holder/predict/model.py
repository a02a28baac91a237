"""Loading a trained nnU-Net model folder into a HolderPredictor, nnU-Net CLI style.

Also makes sure nnU-Net can find our trainer classes (it looks them up by the name stored in the
checkpoint): our shim folder is appended to `nnUNet_extTrainer` when it is not already there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nnunet_holder.brats import SHORT_NAMES
from nnunet_holder.subsets import modality_names
from nnunet_holder.trainer_path import trainer_path

if TYPE_CHECKING:  # torch and the predictor load with the model: the CLI's checks run without them
    import torch

    from nnunet_holder.predict.predictor import HolderPredictor


def ensure_ext_trainer_path() -> None:
    shim = str(trainer_path())
    paths = [p for p in os.environ.get("nnUNet_extTrainer", "").split(os.pathsep) if p]
    if shim not in paths:
        os.environ["nnUNet_extTrainer"] = os.pathsep.join([*paths, shim])


def parse_device(name: str) -> torch.device:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("-device cuda was requested but CUDA is not available; use -device cpu")
    if name == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    if name == "cuda":  # as nnUNetv2_predict: CPU threads do not help a GPU run
        torch.set_num_threads(1)
    return torch.device(name)


def load_predictor(
    folder: Path,
    folds: Sequence[int | str] | None,
    checkpoint: str = "checkpoint_final.pth",
    device: torch.device | None = None,
    use_mirroring: bool = True,
    tile_step_size: float = 0.5,
    allow_tqdm: bool = True,
    on_device: bool = True,
    verbose: bool = False,
) -> HolderPredictor:
    """nnU-Net's predictor setup on `device` (default: the CPU); `on_device` is nnU-Net's
    perform_everything_on_device (GPU only)."""
    import torch

    from nnunet_holder.predict.predictor import HolderPredictor

    device = torch.device("cpu") if device is None else device
    ensure_ext_trainer_path()
    predictor = HolderPredictor(
        tile_step_size=tile_step_size,
        use_gaussian=True,
        use_mirroring=use_mirroring,
        perform_everything_on_device=on_device and device.type == "cuda",
        device=device,
        verbose=verbose,
        verbose_preprocessing=verbose,
        allow_tqdm=allow_tqdm,
    )
    predictor.initialize_from_trained_model_folder(str(folder), tuple(folds) if folds else None, checkpoint)
    return predictor


def parse_modalities(spec: str, channel_names: dict[str, str]) -> tuple[int, ...]:
    """'T1c,FLAIR' or '1,3' -> channel indices, matched against dataset.json's channel_names.

    A name matches a channel's own name or its short name (`modality_names`), in any of the
    BraTS spellings `SHORT_NAMES` knows (t1ce, t1c, t1gd; flair, fl, t2f; ...), case-insensitive.
    A spec that names no modality ('' or ',') is refused: it is not "every modality".
    """
    short = [n.lower() for n in modality_names(channel_names)]
    own = [str(channel_names[str(i)]).lower() for i in range(len(channel_names))]
    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    if not tokens:
        raise SystemExit(
            f"--modalities {spec!r} names no modality; leave the option out to use every modality a case has"
        )
    chosen = []
    for token in tokens:
        key = token.lower()
        key_short = SHORT_NAMES.get(key, token).lower()
        if key.isdigit() and int(key) < len(channel_names):
            chosen.append(int(key))
        elif key in own or key_short in short:
            chosen.append(own.index(key) if key in own else short.index(key_short))
        else:
            known = ", ".join(f"{k}={v}" for k, v in channel_names.items())
            raise SystemExit(f"--modalities: unknown modality '{token}' (this model's channels: {known})")
    return tuple(sorted(set(chosen)))
