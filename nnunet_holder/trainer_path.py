"""`nnunet-holder trainer-path`: the folder to put in the environment variable nnUNet_extTrainer.

nnU-Net imports every .py file of that folder as a top-level module and forgets it afterwards
(nnunetv2/utilities/find_objects.py), so the folder holds only a shim that re-exports our trainer
classes through absolute imports; the classes themselves stay single copies inside `nnunet_holder.trainers`.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path


def trainer_path() -> Path:
    """Absolute path of the shim folder inside the installed package.

    Found from the package's import spec, without importing the trainers: importing them loads
    torch and nnU-Net (half a minute of CPU on a small host), and users run this in every shell.
    """
    spec = importlib.util.find_spec("nnunet_holder.trainers")
    folders = list(spec.submodule_search_locations or []) if spec else []
    shims = [Path(f) / "ext" for f in folders if (Path(f) / "ext" / "__init__.py").is_file()]
    if not shims:
        raise ModuleNotFoundError("nnunet_holder.trainers.ext is not installed with nnunet_holder")
    return shims[0].resolve()


def _run(args: argparse.Namespace) -> int:
    print(trainer_path())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "trainer-path",
        help="print the folder for nnUNet_extTrainer",
        description="Print the folder to export as nnUNet_extTrainer, e.g. "
        "export nnUNet_extTrainer=$(nnunet-holder trainer-path)",
    )
    p.set_defaults(func=_run)
