"""`nnunet-holder plan-small`: the CPU experiment configuration `3d_small`, added to nnU-Net's plans.

The configuration is nnU-Net's own mechanism for a variant of a planned configuration: an entry of
the plans file that `inherits_from` `3d_fullres` and replaces only its architecture, the features
of every stage multiplied by `width` (0.5 by default: 32..128 becomes 16..64 on the synthetic data
at 5 mm). Everything else is inherited, including the data identifier, so `3d_small` trains on the
data `nnUNetv2_plan_and_preprocess` already wrote for `3d_fullres` with nothing re-preprocessed.
`nnUNetv2_train DATASET 3d_small FOLD -tr ...`, `-p` and nnU-Net's planners keep working (a
re-run of the planner rewrites the plans file; run `plan-small` again). How long a `_small`
schedule trains on that configuration, and how close each model gets to its plateau there, is in
docs/records/synthetic_comparison.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path

SMALL = "3d_small"
PARENT = "3d_fullres"


def small_configuration(plans: dict, width: float = 0.5, parent: str = PARENT) -> dict:
    """The plans entry of `3d_small`: `parent`'s architecture with every stage's features × `width`."""
    if parent not in plans["configurations"]:
        raise SystemExit(
            f"the plans have no {parent!r} configuration (found {sorted(plans['configurations'])})"
        )
    if not 0 < width <= 1:
        raise SystemExit(f"--width must be in (0, 1], got {width}")
    architecture = copy.deepcopy(plans["configurations"][parent]["architecture"])
    kwargs = architecture["arch_kwargs"]
    kwargs["features_per_stage"] = [max(1, round(f * width)) for f in kwargs["features_per_stage"]]
    return {"inherits_from": parent, "architecture": architecture}


def add_small_configuration(plans_file: Path, width: float = 0.5, overwrite: bool = False) -> str:
    """Write `3d_small` into `plans_file`; returns what was done. Refuses to replace a different entry."""
    if not plans_file.is_file():
        raise SystemExit(f"{plans_file}: no plans file; run nnUNetv2_plan_and_preprocess first")
    plans = json.loads(plans_file.read_text())
    entry = small_configuration(plans, width)
    existing = plans["configurations"].get(SMALL)
    if existing == entry:
        return f"{plans_file}: {SMALL} is already there (unchanged)"
    if existing is not None and not overwrite:
        raise SystemExit(
            f"{plans_file}: a different {SMALL!r} configuration exists; pass --overwrite to replace it"
        )
    plans["configurations"][SMALL] = entry
    tmp = plans_file.with_name(plans_file.name + ".tmp")
    tmp.write_text(json.dumps(plans, indent=4))
    os.replace(tmp, plans_file)
    features = entry["architecture"]["arch_kwargs"]["features_per_stage"]
    return f"{plans_file}: added {SMALL} (inherits {PARENT}, features {features})"


def _run(args: argparse.Namespace) -> int:
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    if nnUNet_preprocessed is None:
        raise SystemExit("nnUNet_preprocessed is not set")
    folder = Path(nnUNet_preprocessed) / maybe_convert_to_dataset_name(args.d)
    print(add_small_configuration(folder / f"{args.p}.json", args.width, args.overwrite))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plan-small",
        help=f"add the CPU experiment configuration {SMALL} (inherits {PARENT}) to a dataset's plans",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("-d", required=True, help="dataset name or id, as for nnU-Net")
    p.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    p.add_argument("--width", type=float, default=0.5, help="feature multiplier per stage (default 0.5)")
    p.add_argument("--overwrite", action="store_true", help=f"replace a different existing {SMALL}")
    p.set_defaults(func=_run)
