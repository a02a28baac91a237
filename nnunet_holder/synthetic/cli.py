"""Command-line entry point `nnunet-holder synth`: write a synthetic BraTS-like raw dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnunet_holder.synthetic.generate import generate_dataset
from nnunet_holder.synthetic.writer import LAYOUT_NAMES


def _run(args: argparse.Namespace) -> int:
    try:
        out = generate_dataset(
            args.out,
            args.cases,
            spacing=args.spacing,
            seed=args.seed,
            layout=args.layout,
            overwrite=args.overwrite,
            num_processes=args.num_processes,
            incomplete_fraction=args.incomplete,
            keep_complete=args.keep_complete,
        )
    except (FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Wrote {args.cases} synthetic cases ({args.layout} layout, {args.spacing} mm) to {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic BraTS-like cases (MNI152 anatomy, 4 contrasts, labels) in a BraTS layout",
        description="Synthetic brain-tumour MRI on the MNI152 template shipped with nilearn, written in the "
        "BraTS 2020 or 2023 GLI raw layout with BraTS labels, for demos and tests "
        "(convert with convert-brats).",
    )
    parser.add_argument("out", type=Path, help="output folder (the BraTS raw folder)")
    parser.add_argument("--cases", type=int, required=True, help="number of cases")
    parser.add_argument(
        "--spacing",
        type=float,
        default=1.0,
        help="voxel size in mm (1: 240×240×155; 4: 60×60×39 for CPU work)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument("--layout", choices=LAYOUT_NAMES, default="brats2020", help="BraTS naming and labels")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a previous synthetic dataset in OUT"
    )
    parser.add_argument(
        "--incomplete",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="fraction of the cases (but the last --keep-complete) that lack one or two modality files, "
        "T1ce most often, written as absent files as in an incomplete archive (convert with convert-brats "
        "--train-incomplete); the images are those the same seed writes without it",
    )
    parser.add_argument(
        "--keep-complete",
        type=int,
        default=0,
        metavar="N",
        help="keep the last N cases complete: the test cases of convert-brats --num-test N (default 0)",
    )
    parser.add_argument("-np", dest="num_processes", type=int, default=1, help="worker processes (default 1)")
    parser.set_defaults(func=_run)
