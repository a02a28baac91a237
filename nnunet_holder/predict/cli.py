"""`nnunet-holder predict`: segment cases that lack some modalities, with nnUNetv2_predict's options.

`add_model_arguments` gives `predict` and `evaluate-subsets` nnUNetv2_predict's options under
its names, defaults and meaning (README: "nnUNetv2_predict options"); the ones that cannot apply
are accepted by name and refused with a reason, so a habit never silently does something else.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nnunet_holder.file_names import MODALITY_REPORT_STEM


def _env_int(name: str, default: int) -> int:
    # nnUNetv2_predict reads its -npp/-nps defaults from these variables
    return int(os.environ.get(name, default))


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """nnUNetv2_predict's options that locate, load and run a model (shared with evaluate-subsets)."""
    p.add_argument("-d", dest="dataset", required=True, help="dataset name or id")
    p.add_argument("-c", dest="configuration", required=True, help="configuration, e.g. 3d_fullres")
    p.add_argument(
        "-f",
        dest="folds",
        nargs="+",
        default=None,
        help="folds to ensemble (default: every fold_N with the checkpoint, nnU-Net's auto-detection; "
        "nnUNetv2_predict's default 0 1 2 3 4 is the same when all five are trained)",
    )
    p.add_argument(
        "-tr", dest="trainer", default="HolderMITrainer", help="trainer (default: HolderMITrainer)"
    )
    p.add_argument("-p", dest="plans", default="nnUNetPlans", help="plans identifier (default: nnUNetPlans)")
    p.add_argument("-chk", dest="checkpoint", default="checkpoint_final.pth", help="checkpoint file name")
    p.add_argument(
        "-step_size",
        dest="step_size",
        type=float,
        default=0.5,
        help="sliding-window step as a fraction of the patch size (default: 0.5, at most 1)",
    )
    p.add_argument(
        "-device",
        dest="device",
        default="cuda",
        choices=["cuda", "cpu", "mps"],
        help="device (default: cuda, like nnU-Net; pick the GPU with CUDA_VISIBLE_DEVICES)",
    )
    p.add_argument("--disable_tta", action="store_true", help="no mirroring at test time (faster)")
    p.add_argument(
        "--not_on_device",
        action="store_true",
        help="keep the sliding-window accumulator in CPU memory (for cases larger than the GPU's memory)",
    )
    p.add_argument(
        "-npp",
        dest="num_processes_preprocessing",
        type=int,
        default=_env_int("nnUNet_npp", 3),
        help="preprocessing processes (default: $nnUNet_npp or 3); -npp 0 -nps 0 is nnUNetv2_predict's "
        "sequential mode: everything in this process",
    )
    p.add_argument(
        "-nps",
        dest="num_processes_export",
        type=int,
        default=_env_int("nnUNet_nps", 3),
        help="export processes (default: $nnUNet_nps or 3)",
    )
    p.add_argument(
        "-num_parts",
        dest="num_parts",
        type=int,
        default=1,
        help="number of runs sharing the cases (default: 1)",
    )
    p.add_argument(
        "-part_id",
        dest="part_id",
        type=int,
        default=0,
        help="which of the -num_parts runs this is, from 0 (cases[part_id::num_parts], as nnU-Net)",
    )
    p.add_argument(
        "--continue_prediction",
        "--c",
        dest="continue_prediction",
        action="store_true",
        help="continue an interrupted run: cases whose outputs exist are skipped; refused, naming the "
        "difference, when they were made with another model, folds, checkpoint or setting",
    )
    p.add_argument("--disable_progress_bar", action="store_true", help="no progress bars (batch jobs)")
    p.add_argument("--verbose", action="store_true", help="nnU-Net's verbose output")
    p.add_argument(
        "-prev_stage_predictions",
        dest="prev_stage_predictions",
        default=None,
        help="not supported: cascade second stages need the previous stage's segmentation, which a "
        "missing-modality model does not take",
    )


def check_model_arguments(args: argparse.Namespace) -> None:
    """Refuse what cannot apply, with the reason, before any work."""
    if args.prev_stage_predictions is not None:
        raise SystemExit(
            "-prev_stage_predictions: cascades are not supported (our models are single-stage); "
            "predict the 3d_lowres stage with nnUNetv2_predict if you need it"
        )
    if not 0 < args.step_size <= 1:
        raise SystemExit(f"-step_size {args.step_size}: must be in (0, 1], as in nnU-Net")
    if args.num_processes_preprocessing < 0 or args.num_processes_export < 0:
        raise SystemExit(
            "-npp and -nps must be at least 0 (both 0: no worker processes, as nnUNetv2_predict)"
        )
    if args.overwrite and args.continue_prediction:
        raise SystemExit("--overwrite and --continue_prediction contradict each other; pass one")


def predictor_from_args(
    args: argparse.Namespace, folder: Path, folds: list[int | str], allow_tqdm: bool | None = None
):
    """The HolderPredictor of the model in `folder` with the options of `add_model_arguments`."""
    from nnunet_holder.predict.model import load_predictor, parse_device

    return load_predictor(
        folder,
        folds,
        args.checkpoint,
        parse_device(args.device),
        use_mirroring=not args.disable_tta,
        tile_step_size=args.step_size,
        allow_tqdm=not args.disable_progress_bar if allow_tqdm is None else allow_tqdm,
        on_device=not args.not_on_device,
        verbose=args.verbose,
    )


def model_from_args(args: argparse.Namespace) -> tuple[Path, list[int | str], dict]:
    """The model folder, the folds to use and its dataset.json (read without loading any weights)."""
    import json

    from nnunet_holder.predict.locate import model_folder, resolve_folds

    folder = model_folder(args.dataset, args.configuration, args.trainer, args.plans)
    folds = resolve_folds(folder, args.folds, args.checkpoint)
    return folder, folds, json.loads((folder / "dataset.json").read_text())


def _run(args: argparse.Namespace) -> int:
    # everything up to the model's loading is checked without importing torch, so refusals come at once
    from nnunet_holder.predict.expected import ValidationTable
    from nnunet_holder.predict.folder_checks import check_apart, check_output_folder
    from nnunet_holder.predict.model import parse_modalities
    from nnunet_holder.predict.partial import Part, plan_folder, predict_folder, prediction_setting
    from nnunet_holder.provenance import model_setting

    check_model_arguments(args)
    part = Part(args.part_id, args.num_parts)
    input_dir, output = Path(args.input), Path(args.output)
    check_output_folder(output)
    folder, folds, dataset_json = model_from_args(args)
    check_apart(input_dir, output, dataset_json["file_ending"])
    channels = dataset_json["channel_names"]
    forced = None if args.modalities is None else parse_modalities(args.modalities, channels)
    model = model_setting(folder, folds, args.checkpoint, not args.disable_tta, args.step_size)
    plan = plan_folder(
        input_dir,
        output,
        dataset_json["file_ending"],
        len(channels),
        part,
        overwrite=args.overwrite,
        continue_prediction=args.continue_prediction,
        save_probabilities=args.save_probabilities,
        setting=prediction_setting(model, forced, channels),
    )
    print(
        f"part {part.part_id} of {part.num_parts}: {len(plan.cases)} cases, {len(plan.to_predict)} to predict"
        + (f", {len(plan.skipped)} already predicted (skipped)" if plan.skipped else "")
    )
    predictor = predictor_from_args(args, folder, folds)
    expected = ValidationTable.load(folder, folds, channels)
    reports = predict_folder(
        predictor,
        plan,
        output,
        expected,
        forced,
        part,
        args.num_processes_preprocessing,
        args.num_processes_export,
        args.save_probabilities,
        progress=not args.disable_progress_bar,
    )
    failed = [r for r in reports if r.status == "failed"]
    predicted = sum(r.status == "ok" for r in reports)
    print(
        f"predicted {predicted} of {len(reports)} cases into {output}"
        + (f" ({len(plan.skipped)} skipped: already predicted)" if plan.skipped else "")
        + f"; report: {output / f'{MODALITY_REPORT_STEM}{part.suffix}.json'}"
    )
    for line in sorted({expected.expectation(r.used)["expected"] for r in reports if r.status == "ok"}):
        print(f"  expected {line}")
    for r in failed:
        print(f"FAILED {r.error}")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict cases with missing modalities",
        description="Predict every case in -i, each with the modalities it has. Channel files are matched by "
        "their _XXXX suffix. A modality is missing when its file is absent, all zero, NaN everywhere, or "
        "without contrast inside the brain (constant or near-constant; the brain is where another channel "
        "is non-zero). NaN voxels in a file that has others "
        "are set to 0. The report (modality_report.json/.csv in -o) names each such file and what was done "
        "in its `notes`. -o must be writable and must not be -i: outputs are named like input files. Takes "
        "nnUNetv2_predict's options (see the README's table).",
    )
    p.add_argument(
        "-i", dest="input", required=True, help="folder of CASE_XXXX.nii.gz files (nnU-Net naming)"
    )
    p.add_argument(
        "-o", dest="output", required=True, help="output folder for the segmentations and the report"
    )
    add_model_arguments(p)
    p.add_argument(
        "--save_probabilities",
        action="store_true",
        help="also write CASE.npz (probabilities) and CASE.pkl, as nnUNetv2_predict does",
    )
    p.add_argument(
        "--modalities",
        default=None,
        help="use only these modalities, e.g. 'T1,FLAIR' or '0,3' (names from dataset.json); leave the "
        "option out to use every modality a case has",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing segmentations in -o")
    p.set_defaults(func=_run)
