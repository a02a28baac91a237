"""`nnunet-holder predict`: segment cases that lack some modalities, nnUNetv2_predict style."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The nnUNetv2_predict options that locate a trained model (shared with evaluate-subsets)."""
    p.add_argument("-d", dest="dataset", required=True, help="dataset name or id")
    p.add_argument("-c", dest="configuration", required=True, help="configuration, e.g. 3d_fullres")
    p.add_argument("-f", dest="folds", nargs="+", default=["0"], help="folds to ensemble (default: 0)")
    p.add_argument(
        "-tr", dest="trainer", default="HolderMITrainer", help="trainer (default: HolderMITrainer)"
    )
    p.add_argument("-p", dest="plans", default="nnUNetPlans", help="plans identifier (default: nnUNetPlans)")
    p.add_argument("-chk", dest="checkpoint", default="checkpoint_final.pth", help="checkpoint file name")
    p.add_argument(
        "-device",
        dest="device",
        default="cuda",
        choices=["cuda", "cpu", "mps"],
        help="device (default: cuda, like nnU-Net)",
    )
    p.add_argument("--disable_tta", action="store_true", help="no mirroring at test time (faster)")
    p.add_argument("-npp", dest="num_processes", type=int, default=2, help="preprocessing/export workers")


def predictor_from_args(args: argparse.Namespace, allow_tqdm: bool = True):
    """The HolderPredictor of the model that `add_model_arguments`' options name."""
    from nnunet_holder.predict.model import load_predictor, model_folder, parse_device, parse_folds

    return load_predictor(
        model_folder(args.dataset, args.configuration, args.trainer, args.plans),
        parse_folds(args.folds),
        args.checkpoint,
        parse_device(args.device),
        use_mirroring=not args.disable_tta,
        allow_tqdm=allow_tqdm,
    )


def _run(args: argparse.Namespace) -> int:
    from nnunet_holder.predict.model import parse_modalities
    from nnunet_holder.predict.partial import predict_folder

    predictor = predictor_from_args(args)
    forced = (
        parse_modalities(args.modalities, predictor.dataset_json["channel_names"])
        if args.modalities
        else None
    )
    reports = predict_folder(
        predictor,
        Path(args.input),
        Path(args.output),
        forced,
        overwrite=args.overwrite,
        num_processes=args.num_processes,
    )
    failed = [r for r in reports if r.status != "ok"]
    print(
        f"predicted {len(reports) - len(failed)} of {len(reports)} cases into {args.output}; "
        f"report: {Path(args.output) / 'modality_report.json'}"
    )
    for r in failed:
        print(f"FAILED {r.error}")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict cases with missing modalities",
        description="Predict every case in -i, each with the modalities it has. Channel files are matched by "
        "their _XXXX suffix; a missing file or an all-zero file means that modality is missing.",
    )
    p.add_argument(
        "-i", dest="input", required=True, help="folder of CASE_XXXX.nii.gz files (nnU-Net naming)"
    )
    p.add_argument(
        "-o", dest="output", required=True, help="output folder for the segmentations and the report"
    )
    add_model_arguments(p)
    p.add_argument(
        "--modalities",
        default=None,
        help="use only these modalities, e.g. 'T1,FLAIR' or '0,3' (names from dataset.json)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing segmentations in -o")
    p.set_defaults(func=_run)
