"""`nnunet-holder evaluate-subsets`: Dice and HD95 of every modality subset on labelled cases."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnunet_holder.evaluate.metric_sets import DEFAULT_METRIC_SETS, METRIC_SETS, check_metric_sets
from nnunet_holder.file_names import DICE_HEATMAP, PER_CASE_TABLE, SUBSET_TABLE, SUBSET_TABLE_STEM, TIMING
from nnunet_holder.predict.cli import (
    add_model_arguments,
    check_model_arguments,
    model_from_args,
    predictor_from_args,
)

# runner.PROTOCOLS' names, repeated so that building the parser imports no torch
PROTOCOL_CHOICES = ("preprocessed", "raw")


def _run(args: argparse.Namespace) -> int:
    from nnunet_holder.evaluate.records import (
        evaluation_setting,
        existing_cases,
        image_cases,
        refuse_continuing,
    )
    from nnunet_holder.parts import Part
    from nnunet_holder.provenance import model_setting

    # every check that needs no model comes first: none of it imports torch, so a refusal is immediate
    check_model_arguments(args)
    if args.save_probabilities:
        raise SystemExit(
            "--save_probabilities: evaluate-subsets writes no probabilities; use `nnunet-holder predict`"
        )
    part = Part(args.part_id, args.num_parts)
    images, labels, out = Path(args.images), Path(args.labels), Path(args.output)
    for flag, folder in (("-i", images), ("-l", labels)):
        if not folder.is_dir():
            raise SystemExit(f"{flag} {folder}: not a folder")
    folder, folds, dataset_json = model_from_args(args)
    model = model_setting(folder, folds, args.checkpoint, not args.disable_tta, args.step_size)
    cases = image_cases(images, dataset_json, part)
    names = [c.case for c in cases]
    done = existing_cases(out, names)
    table = out / SUBSET_TABLE
    if (done or (table.exists() and part.num_parts == 1)) and not (
        args.overwrite or args.continue_prediction
    ):
        raise SystemExit(
            f"{out} already holds an evaluation ({len(done)} of this run's {len(names)} cases); pass "
            "--continue_prediction to evaluate only the others, or --overwrite to replace it"
        )
    skip = set(done) if args.continue_prediction else set()
    if skip:
        refuse_continuing(
            out, sorted(skip), evaluation_setting(model, args.protocol, args.postprocess_et, dataset_json)
        )
        print(f"{len(skip)} of {len(names)} cases already evaluated (skipped)")

    from nnunet_holder.evaluate.runner import evaluate_cases, print_summary
    from nnunet_holder.evaluate.sources import prepare_raw

    predictor = predictor_from_args(args, folder, folds, allow_tqdm=False)
    failures: list[str] = []
    n, prepared = prepare_raw(predictor, [c for c in cases if c.case not in skip], labels, failures)
    summary = evaluate_cases(
        predictor,
        prepared,
        out,
        postprocess_et=args.postprocess_et,
        num_cases=n,
        title=f"{args.trainer} ({predictor.plans_manager.dataset_name})",
        protocol=args.protocol,
        save_segmentations=args.save_segmentations,
        part=part,
        earlier_cases=sorted(skip),
        failures=failures,
        metrics=check_metric_sets(args.metrics),
        model=model,
    )
    if summary is None:
        print(
            f"part {part.part_id} of {part.num_parts} done in {out}; when every part is done: "
            f"nnunet-holder merge-parts {out}"
        )
    else:
        print_summary(summary, args.protocol)
        written = f"{SUBSET_TABLE_STEM}.md/.csv/.json, {PER_CASE_TABLE}, {TIMING}"
        if "legacy" in args.metrics:
            written += f", {DICE_HEATMAP}"
        if args.save_segmentations:
            written += ", segmentations/<subset>/"
        print(f"\nwritten to {out}: {written}")
    if failures:
        print(f"\n{len(failures)} case(s) failed and are not in the table:")
    for f in failures:
        print(f"SKIPPED {f}")
    return 1 if failures else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate-subsets",
        help="evaluate a model on every modality subset (one sliding-window pass per case)",
        description="Evaluate every non-empty modality subset (15 for BraTS) on labelled cases. A case that "
        "lacks modalities (files absent or all zero) is scored only on the subsets of those it has, and the "
        "tables then give the number of cases behind each column. "
        "By default (--protocol preprocessed) HolderMITrainer models need ONE sliding-window pass per case; "
        "other nnU-Net models are run once per subset with the missing channels zero-filled. "
        "Dice and HD95 (BraTS 2017-2021 empty rules), and with --metrics lesion the BraTS 2023 lesion-wise "
        "Dice and HD95.",
    )
    p.add_argument(
        "-i", dest="images", required=True,
        help="folder of CASE_XXXX.nii.gz images (a file per channel a case has)"
    )
    p.add_argument("-l", dest="labels", required=True, help="folder of CASE.nii.gz reference segmentations")
    p.add_argument("-o", dest="output", required=True, help="output folder")
    add_model_arguments(p)
    p.add_argument(
        "--save_probabilities",
        action="store_true",
        help="not supported here (nnUNetv2_predict's option): use `nnunet-holder predict`",
    )
    p.add_argument(
        "--postprocess-et",
        type=int,
        default=None,
        metavar="VOXELS",
        help="RFNet post-processing: predicted ET smaller than VOXELS becomes empty (RFNet: 500)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOL_CHOICES,
        default="preprocessed",
        help="where a missing modality is zeroed. 'preprocessed' (default, the paper's protocol): each "
        "case is preprocessed once with every modality and the missing channels are zeroed in the network "
        "input (acquired, then withheld); one preprocessing and one sliding-window pass per case for "
        "HolderMITrainer models, one pass per subset for other models. 'raw': the missing channels are "
        "zeroed in the raw images and every subset is preprocessed and predicted on its own, exactly as "
        "`nnunet-holder predict` treats a case whose files are absent (nnU-Net's crop box and normalisation "
        "mask then come from the available modalities only); costs 2^M - 1 preprocessings and "
        "sliding-window passes per case (15 for BraTS) for every model. The tables' header and "
        "timing.json name the protocol",
    )
    p.add_argument(
        "--save-segmentations",
        action="store_true",
        help="also write every subset's segmentation in nnU-Net's format to "
        "-o/segmentations/<subset>/CASE.nii.gz (subset names as in the table, e.g. T1c+Fl, ~T1, Full; "
        "the network's label maps, before --postprocess-et)",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        choices=list(METRIC_SETS),
        default=list(DEFAULT_METRIC_SETS),
        help="metric sets, one table per metric: "
        + "; ".join(f"'{name}': {text}" for name, text in METRIC_SETS.items())
        + " (default: legacy; e.g. --metrics legacy lesion). Every table's heading names its metric",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing evaluation in -o")
    p.set_defaults(func=_run)
