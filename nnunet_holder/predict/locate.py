"""Finding a trained model's folder and folds as nnUNetv2_predict does, without loading anything.

Kept apart from model.py (which loads the weights, and so imports torch) so that the commands can
check their arguments and outputs and refuse at once, before the slow imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nnunetv2.utilities.file_path_utilities import (
    convert_trainer_plans_config_to_identifier,
    get_output_folder,
)


def resolve_folds(folder: Path, folds: Sequence[str] | None, checkpoint: str) -> list[int | str]:
    """-f as nnU-Net reads it; without -f, every fold_N holding the checkpoint (nnU-Net's auto-detection).

    Every fold is checked for its checkpoint here, so a wrong -f fails before any work.
    """
    if folds is None:
        found = sorted(
            int(d.name[len("fold_") :])
            for d in folder.glob("fold_*")
            if d.name[len("fold_") :].isdigit() and (d / checkpoint).is_file()
        )
        if not found:
            raise SystemExit(f"no fold_N/{checkpoint} in {folder}; train a fold or pass -f/-chk")
        return list(found)
    try:
        chosen = [f if f == "all" else int(f) for f in folds]
    except ValueError:
        raise SystemExit(f"-f {' '.join(folds)}: folds are integers or 'all'") from None
    for f in chosen:
        if not (folder / f"fold_{f}" / checkpoint).is_file():
            raise SystemExit(f"-f {f}: {folder / f'fold_{f}' / checkpoint} does not exist")
    return chosen


def model_folder(dataset: str, configuration: str, trainer: str, plans: str) -> Path:
    folder = Path(get_output_folder(dataset, trainer, plans, configuration))
    if not folder.is_dir():
        raise SystemExit(
            f"no trained model at {folder} (dataset {dataset}, -tr {trainer}, -p {plans}, -c {configuration})"
        )
    return folder


def model_folder_in(results: Path, dataset_folder: str, trainer: str, plans: str, configuration: str) -> Path:
    """The folder nnU-Net trains (trainer, plans, configuration) of `dataset_folder` into under `results`.

    `get_output_folder` for a results root other than this process's `nnUNet_results` (each seed of
    `compare` has its own); the folder name is nnU-Net's, from the function `get_output_folder` uses.
    """
    identifier = convert_trainer_plans_config_to_identifier(trainer, plans, configuration)
    return Path(results) / dataset_folder / identifier
