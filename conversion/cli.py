"""Command-line entry points `nnunet-holder convert-brats`, `fill-missing` and `to-brats`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnunet_holder.conversion.back_conversion import resolve_convention, to_brats
from nnunet_holder.conversion.convert import DEFAULT_NAME, convert_brats
from nnunet_holder.conversion.fill_missing import fill_missing
from nnunet_holder.conversion.labels import describe_convention
from nnunet_holder.conversion.problems import ConversionError
from nnunet_holder.conversion.report import ConversionResult, format_problems, format_summary

from nnunet_holder.availability import ABSENT_KEY
from nnunet_holder.brats import CONVENTION_NAMES


def _print_error(error: Exception) -> None:
    print(f"error: {error}", file=sys.stderr)
    problems = getattr(error, "problems", [])
    if problems:
        print("\n".join(format_problems(problems)), file=sys.stderr)


def _splits_hint(result: ConversionResult) -> str:
    where = result.splits_file
    if result.preprocessed_splits_file is not None:
        return f"splits_final.json: {result.preprocessed_splits_file} (a copy is in {where})"
    return (
        f"splits_final.json written to {where}; nnU-Net reads it from "
        f"$nnUNet_preprocessed/{where.parent.name}/: copy it there after nnUNetv2_plan_and_preprocess "
        "(or set nnUNet_preprocessed before converting)"
    )


def _run_convert(args: argparse.Namespace) -> int:
    try:
        result = convert_brats(
            args.input,
            args.dataset_id,
            name=args.name,
            split_dir=args.split_dir,
            split=args.split,
            overwrite=args.overwrite,
            strict=args.strict,
            num_processes=args.num_processes,
            keep_partial=args.keep_partial,
            test_cases=args.num_test,
            incomplete_training=args.train_incomplete,
        )
    except (ConversionError, ValueError, OSError) as e:
        _print_error(e)
        return 1
    print(format_summary(result))
    if result.splits_file is not None:
        print(_splits_hint(result))
    return 0


def _run_fill_missing(args: argparse.Namespace) -> int:
    try:
        result = fill_missing(args.source_id, args.dataset_id, args.name, args.overwrite)
    except (ConversionError, ValueError, OSError) as e:
        _print_error(e)
        return 1
    print(
        f"Wrote {result.output_dir}: {len(result.training_cases)} training cases, "
        f"{len(result.absent)} of them "
        f"incomplete (zero-filled channels recorded under {ABSENT_KEY!r} in dataset.json), "
        f"{len(result.refused)} refused"
    )
    if result.problems:
        print("\n".join(format_problems(result.problems)))
    return 0


def _run_to_brats(args: argparse.Namespace) -> int:
    try:
        written = to_brats(args.pred_dir, args.out_dir, args.convention, args.dataset_json, args.overwrite)
        convention, warning = resolve_convention(args.pred_dir, args.convention, args.dataset_json)
    except (ConversionError, ValueError, OSError) as e:
        _print_error(e)
        return 1
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Wrote {len(written)} files in {describe_convention(convention)} to {args.out_dir}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    convert = subparsers.add_parser(
        "convert-brats",
        help="convert a BraTS 2018-2024 raw folder into an nnU-Net raw dataset (regions WT/TC/ET)",
        description="Detects the BraTS layout (2018/2019 HGG/LGG, 2020, 2021, 2023/2024 GLI) and writes "
        "$nnUNet_raw/DatasetXXX_NAME with channels 0 T1, 1 T1ce, 2 T2, 3 FLAIR and nnU-Net's BraTS "
        "region labels.",
    )
    convert.add_argument("input", type=Path, help="the BraTS raw folder (never modified)")
    convert.add_argument("-d", dest="dataset_id", type=int, required=True, help="nnU-Net dataset id (1-999)")
    convert.add_argument(
        "-n", dest="name", default=DEFAULT_NAME, help=f"dataset name (default {DEFAULT_NAME})"
    )
    convert.add_argument(
        "--split-dir",
        type=Path,
        help="folder with trainN/valN/testN.txt (U-HVED/RFNet) or train/val/test.txt (BraTS 2020)",
    )
    convert.add_argument("--split", type=int, default=1, help="which numbered split to use (default 1)")
    convert.add_argument(
        "--num-test", type=int, help="without split files: send the last N cases to imagesTs"
    )
    convert.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing dataset of that id and name (preprocessed data and trained models of "
        "that id, made from the replaced data, are reported as stale)",
    )
    convert.add_argument("--strict", action="store_true", help="fail (write nothing) on any error or warning")
    convert.add_argument(
        "-np",
        dest="num_processes",
        type=int,
        help="worker processes (default min(4, CPUs), counted when the command runs)",
    )
    convert.add_argument(
        "--keep-partial",
        action="store_true",
        help="keep cases with missing files as partial cases in imagesTs",
    )
    convert.add_argument(
        "--train-incomplete",
        action="store_true",
        help="keep a training case with missing modality files in imagesTr: a zero-filled file per "
        f"missing channel, the channels recorded per case under {ABSENT_KEY!r} in dataset.json (nnU-Net "
        "ignores the key; every trainer of this package reads it and trains the case only on the modalities "
        "it has, vanilla nnU-Net sees the zeros as data). Test cases with missing files go to imagesTs "
        "with their present files. Cases without a segmentation or without any image are left out",
    )
    convert.set_defaults(func=_run_convert)

    fill = subparsers.add_parser(
        "fill-missing",
        help="copy an nnU-Net raw dataset whose training cases lack channel files into a new dataset id, "
        "zero-filling and recording the missing channels",
        description=(
            "Copies $nnUNet_raw/DatasetSRC_* to a new dataset id (the source is never modified): every file "
            "as it is, a zero-filled file with the case's grid for each missing (or all-zero) channel of a "
            f"training case, and dataset.json with the absent channels per case under {ABSENT_KEY!r}, which "
            "nnU-Net's planning and --verify_dataset_integrity accept and every trainer of this package "
            "reads (each case is trained on the modalities it has). A training case is refused, with the "
            "file named, when it has no image at all, when its files disagree in geometry, when the source's"
            " own record names a channel that holds an image or omits one that has none, or when a missing "
            "channel is a CT channel (nnU-Net's CTNormalization takes dataset-wide foreground statistics, "
            "which zeros would skew). Test cases are copied unchanged. Endings: .nii.gz, .nii, .nrrd, .mha."
        ),
    )
    fill.add_argument("source_id", type=int, help="id of the raw dataset with missing files (never modified)")
    fill.add_argument("-d", dest="dataset_id", type=int, required=True, help="id of the new dataset (1-999)")
    fill.add_argument("-n", dest="name", help="name of the new dataset (default: the source's)")
    fill.add_argument(
        "--overwrite", action="store_true", help="replace an existing dataset of that id and name"
    )
    fill.set_defaults(func=_run_fill_missing)

    back = subparsers.add_parser(
        "to-brats",
        help="map nnU-Net predictions (region labels 0/1/2/3) back to BraTS labels",
        description="Writes one uint8 BraTS-label file per prediction with the prediction's geometry.",
    )
    back.add_argument("pred_dir", type=Path, help="folder of nnU-Net predictions")
    back.add_argument("out_dir", type=Path, help="where the BraTS-label files go")
    back.add_argument(
        "--convention",
        choices=CONVENTION_NAMES,
        help=f"{describe_convention('2018')}; {describe_convention('2023')}. Default: the "
        "brats_convention of the dataset.json (--dataset-json, else the one in pred_dir), else 2018 with a "
        "warning (`nnunet-holder predict` writes no dataset.json: pass --convention 2023 for BraTS 2023+)",
    )
    back.add_argument(
        "--dataset-json", type=Path, help="dataset.json of the converted dataset (brats_convention)"
    )
    back.add_argument("--overwrite", action="store_true", help="replace existing output files")
    back.set_defaults(func=_run_to_brats)
