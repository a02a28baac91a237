"""Trainer names of a comparison, resolved by nnU-Net's own lookup before anything is trained.

`nnUNetv2_train -tr NAME` finds a trainer in nnU-Net's trainer package, then in the folders of
`nnUNet_extTrainer`. A comparison asks the same lookup for every name first, so a misspelt name
is refused with the closest known names before hours of training go into the others, and it
reads each trainer's schedule (epochs × iterations) from the project's `overrides`, so a
comparison of different budgets is pointed out.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path


def _known_names(ext_paths: Sequence[str]) -> list[str]:
    """Class names defined in nnU-Net's trainer package and in the `nnUNet_extTrainer` folders."""
    import nnunetv2

    folders = [Path(nnunetv2.__path__[0]) / "training" / "nnUNetTrainer", *map(Path, ext_paths)]
    names: set[str] = set()
    for folder in folders:
        for py in folder.rglob("*.py") if folder.is_dir() else ():
            names.update(re.findall(r"^class (\w+)", py.read_text(errors="ignore"), flags=re.M))
    names.update(_exported_names())
    return sorted(names)


def _exported_names() -> list[str]:
    """The trainer names the project's shim folder re-exports."""
    from nnunet_holder.trainers import ALL_TRAINERS

    return [t.__name__ for t in ALL_TRAINERS]


def resolve_trainers(names: Sequence[str], env: Mapping[str, str]) -> dict[str, type]:
    """name → trainer class, by nnU-Net's lookup under `env`'s `nnUNet_extTrainer`; refuses unknown names."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    found: dict[str, type] = {}
    missing: list[str] = []
    previous = os.environ.get("nnUNet_extTrainer")
    os.environ["nnUNet_extTrainer"] = env.get("nnUNet_extTrainer", "")
    try:
        for name in names:
            # nnU-Net prints every folder it searches; the refusal below says what matters
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    found[name] = recursive_find_trainer_class_by_name(name)
                except RuntimeError:
                    missing.append(name)
    finally:
        if previous is None:
            del os.environ["nnUNet_extTrainer"]
        else:
            os.environ["nnUNet_extTrainer"] = previous
    if missing:
        paths = [p for p in env.get("nnUNet_extTrainer", "").split(os.pathsep) if p]
        known = _known_names(paths)
        lines = []
        for name in missing:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f" (closest known: {', '.join(close)})" if close else ""
            lines.append(f"unknown trainer {name!r}{hint}")
        raise SystemExit(
            "nothing was trained: " + "; ".join(lines) + ". nnU-Net searched its own trainers and "
            f"nnUNet_extTrainer={os.pathsep.join(paths)}"
        )
    return found


def schedule(trainer: type) -> tuple[int, int] | None:
    """(epochs, iterations per epoch) of a project trainer, from its `overrides`; None for others."""
    from nnunet_holder.trainers.overrides import OverridesMixin

    if not issubclass(trainer, OverridesMixin):
        return None
    merged = trainer.merged_overrides()
    return merged.get("num_epochs", 1000), merged.get("num_iterations_per_epoch", 250)
