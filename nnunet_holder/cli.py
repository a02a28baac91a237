"""The `nnunet-holder` console script: one subcommand per capability.

Each subcommand lives in the module that implements it; that module exposes
`register(subparsers)` which adds its parser and sets `func` to a callable taking the parsed
namespace and returning an exit status. This file only lists the modules, so importing the CLI
does not import torch-heavy code until a subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module path -> subcommands it registers (for the help text before import)
COMMAND_MODULES: tuple[str, ...] = (
    "nnunet_holder.trainer_path",
    "nnunet_holder.synthetic.cli",
    "nnunet_holder.conversion.cli",
    "nnunet_holder.predict.cli",
    "nnunet_holder.evaluate.cli",
    "nnunet_holder.merge_parts",
    "nnunet_holder.small_config",
    "nnunet_holder.compare.cli",
    "nnunet_holder.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnunet-holder",
        description="Missing-modality brain-tumour segmentation for nnU-Net v2 (Hölder divergence + MI).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # subcommand not shipped in this build
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
