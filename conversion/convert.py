"""`convert_brats`: a BraTS raw folder (any supported layout) -> an nnU-Net raw dataset with region labels.

The dataset is built in a temporary folder beside the target and renamed into place only when it is
complete, so an interrupted or failed run never leaves a half dataset, and an existing dataset is
replaced only with `overwrite`. Cases are converted in a process pool; each bad case is reported
and left out while the others finish.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnunet_holder.conversion.case import TEST, TRAIN, CaseJob, CaseOutcome, convert_case
from nnunet_holder.conversion.layouts import MODALITIES, CaseSource, Layout, discover
from nnunet_holder.conversion.problems import ConversionError, Problem
from nnunet_holder.conversion.report import ConversionResult
from nnunet_holder.conversion.splits import SplitLists, read_split_dir
from tqdm import tqdm

from nnunet_holder.availability import ABSENT_KEY, record_entry
from nnunet_holder.brats import NNUNET_LABELS, REGIONS_CLASS_ORDER
from nnunet_holder.file_names import CONVERSION_REPORT

DEFAULT_NAME = "BraTS"
DATASET_LEVEL = "(dataset)"  # the `case` of problems that concern no single case


def default_num_processes() -> int:
    return min(4, os.cpu_count() or 1)


def dataset_folder_name(dataset_id: int, name: str) -> str:
    if not 1 <= int(dataset_id) <= 999:
        raise ValueError(f"dataset id must be 1..999 (nnU-Net's DatasetXXX_NAME), got {dataset_id}")
    if not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise ValueError(f"dataset name {name!r} must be non-empty, without spaces or path separators")
    return f"Dataset{int(dataset_id):03d}_{name}"


def raw_root_folder() -> Path:
    value = os.environ.get("nnUNet_raw")
    if not value:
        raise ConversionError(
            "nnUNet_raw is not set: export nnUNet_raw=/path/to/nnUNet_raw (nnU-Net's raw data folder)"
        )
    return Path(value)


def check_target(input_dir: Path, target: Path, overwrite: bool) -> None:
    source, out = input_dir.resolve(), target.resolve()
    if out == source or source in out.parents or out in source.parents:
        raise ConversionError(f"output {out} and input {source} overlap; the source must stay untouched")
    if target.exists() and not overwrite:
        raise ConversionError(f"{target} already exists; pass --overwrite (overwrite=True) to replace it")
    dataset_id = target.name.split("_", 1)[0]
    clashes = [p.name for p in target.parent.glob(f"{dataset_id}_*") if p.is_dir() and p.name != target.name]
    if clashes:
        raise ConversionError(
            f"{target.parent} already holds {', '.join(sorted(clashes))} with the same dataset id; "
            "nnU-Net needs unique ids, choose another -d"
        )


def _select_test_cases(cases: list[CaseSource], test_cases: Sequence[str] | int) -> set[str]:
    ids = [c.case_id for c in cases]
    if isinstance(test_cases, str):
        test_cases = [test_cases]
    if isinstance(test_cases, int):
        if not 0 <= test_cases < len(ids):
            raise ConversionError(
                f"test_cases={test_cases} must leave at least one of the {len(ids)} cases for training"
            )
        return set(ids[len(ids) - test_cases :])
    unknown = sorted(set(test_cases) - set(ids))
    if unknown:
        raise ConversionError(f"test cases not found in the input: {', '.join(unknown)}")
    return set(test_cases)


def _assign(
    cases: list[CaseSource], splits: SplitLists | None, test_cases: Sequence[str] | int | None
) -> tuple[dict[str, str], list[Problem]]:
    """Destination (imagesTr or imagesTs) per case, leaving out cases a split does not list."""
    if splits is None:
        test = _select_test_cases(cases, test_cases) if test_cases is not None else set()
        return {c.case_id: TEST if c.case_id in test else TRAIN for c in cases}, []
    part_of = splits.part_of()
    problems = []
    destinations = {}
    for case in cases:
        part = part_of.get(case.case_id)
        if part is None:
            problems.append(
                Problem(case.case_id, str(case.folder), "warning", "listed in no split file; case left out")
            )
        else:
            destinations[case.case_id] = TEST if part == "test" else TRAIN
    found = {c.case_id for c in cases}
    for case_id, part in sorted(part_of.items()):
        if case_id not in found:
            problems.append(
                Problem(
                    case_id,
                    str(splits.files[part]),
                    "warning",
                    f"listed in {splits.files[part].name} but no case folder has this id",
                )
            )
    return destinations, problems


def _run_jobs(jobs: list[CaseJob], num_processes: int, progress: bool) -> list[CaseOutcome]:
    bar = tqdm(total=len(jobs), desc="convert-brats", unit="case", disable=not progress)
    outcomes = []
    try:
        if num_processes <= 1 or len(jobs) <= 1:
            for job in jobs:
                outcomes.append(convert_case(job))
                bar.update()
        else:
            # spawn, not fork: the caller may hold threads (torch, tqdm) that a fork copies mid-state
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(num_processes, len(jobs))) as pool:
                for outcome in pool.imap_unordered(convert_case, jobs):
                    outcomes.append(outcome)
                    bar.update()
    finally:
        bar.close()
    return sorted(outcomes, key=lambda o: o.case_id)


def _dataset_json(name: str, layout: Layout, outcomes: list[CaseOutcome]) -> dict[str, Any]:
    channel_names = {str(i): m for i, m in enumerate(MODALITIES)}
    absent = {o.case_id: record_entry(o.absent, channel_names) for o in outcomes if o.absent}
    content = {
        "name": name,
        "description": f"{layout.description} converted by nnunet-holder (labels: nnU-Net BraTS regions)",
        "channel_names": channel_names,
        "labels": NNUNET_LABELS,
        "regions_class_order": REGIONS_CLASS_ORDER,
        "numTraining": sum(o.destination == TRAIN for o in outcomes),
        "file_ending": ".nii.gz",
        "brats_convention": layout.convention,
        "brats_layout": layout.name,
    }
    if absent:
        content[ABSENT_KEY] = absent
    return content


def _write_json(path: Path, content: Any) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n")


def swap_in(built: Path, target: Path) -> None:
    if not target.exists():
        built.rename(target)
        return
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    target.rename(old)
    try:
        built.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old)


def _preprocessed_splits(
    folder: str, splits: list[dict[str, list[str]]], overwrite: bool
) -> tuple[Path | None, list[Problem]]:
    root = os.environ.get("nnUNet_preprocessed")
    if not root:
        return None, []
    path = Path(root) / folder / "splits_final.json"
    if path.exists() and not overwrite:
        try:
            same = json.loads(path.read_text()) == splits
        except (OSError, ValueError):
            same = False
        if not same:
            message = (
                "exists with other content; not replaced (use --overwrite), the raw folder has the new one"
            )
            return None, [Problem(DATASET_LEVEL, str(path), "warning", message)]
    return path, []


def _stale_outputs(dataset_id: int) -> list[Problem]:
    """Warnings for nnU-Net's preprocessed data and trained models of this dataset id: they were made
    from the raw dataset of that id as it was before this conversion."""
    problems = []
    for variable, what, remedy in (
        ("nnUNet_preprocessed", "preprocessed data", f"nnUNetv2_plan_and_preprocess -d {dataset_id} again"),
        ("nnUNet_results", "trained models", "their training again on the new data"),
    ):
        root = os.environ.get(variable)
        for folder in sorted(Path(root).glob(f"Dataset{dataset_id:03d}_*")) if root else []:
            # a folder holding only the splits file that an earlier conversion put there has no data
            if folder.is_dir() and any(p.name != "splits_final.json" for p in folder.iterdir()):
                message = (
                    f"{what} of dataset {dataset_id} exist; they were made before this conversion and are "
                    f"now stale: run {remedy}"
                )
                problems.append(Problem(DATASET_LEVEL, str(folder), "warning", message))
    return problems


def convert_brats(
    input_dir: Path | str,
    dataset_id: int,
    name: str = DEFAULT_NAME,
    split_dir: Path | str | None = None,
    split: int = 1,
    overwrite: bool = False,
    strict: bool = False,
    num_processes: int | None = None,
    keep_partial: bool = False,
    test_cases: Sequence[str] | int | None = None,
    progress: bool = True,
    incomplete_training: bool = False,
) -> ConversionResult:
    """Convert a BraTS raw folder into `$nnUNet_raw/DatasetXXX_NAME`.

    `split_dir` (with `split`) sends the split's test cases to imagesTs/labelsTs and writes a one-fold
    splits_final.json; without split files, `test_cases` (case ids, or a count taken from the end of the
    sorted case list) go to imagesTs. `keep_partial` sends cases with missing image files to imagesTs
    (their present files only). `incomplete_training` keeps them where they belong instead: a training
    case goes to imagesTr with a zero-filled file per missing channel and the channels recorded under
    `availability.ABSENT_KEY` in dataset.json, a test case to imagesTs with its present files; a case
    without a segmentation or without any image is still left out. Raises ConversionError when nothing
    converts, when the target exists without `overwrite`, or (with `strict`) on any error or warning, in
    which case nothing is written.
    Preprocessed data or trained models of the dataset id that exist already are reported as stale.
    """
    input_dir = Path(input_dir)
    if split_dir is not None and test_cases is not None:
        raise ConversionError("give either split files or test_cases, not both")
    folder = dataset_folder_name(dataset_id, name)
    raw_root = raw_root_folder()
    target = raw_root / folder
    check_target(input_dir, target, overwrite)
    try:
        layout, cases = discover(input_dir)
        splits = read_split_dir(split_dir, split) if split_dir is not None else None
    except ValueError as e:
        raise ConversionError(str(e)) from e
    destinations, problems = _assign(cases, splits, test_cases)

    raw_root.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{folder}.partial-", dir=raw_root))
    try:
        for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
            (build / sub).mkdir()
        jobs = [
            CaseJob(c, layout, destinations[c.case_id], build, keep_partial, incomplete_training)
            for c in cases
            if c.case_id in destinations
        ]
        outcomes = _run_jobs(jobs, num_processes or default_num_processes(), progress)
        for outcome in outcomes:
            problems.extend(outcome.problems)
        result = ConversionResult(
            output_dir=target,
            layout=layout.name,
            convention=layout.convention,
            training_cases=[o.case_id for o in outcomes if o.destination == TRAIN],
            test_cases=[o.case_id for o in outcomes if o.destination == TEST],
            partial_cases={
                o.case_id: o.channels for o in outcomes if o.destination and len(o.channels) < len(MODALITIES)
            },
            skipped={o.case_id: o.problems for o in outcomes if o.destination is None},
            problems=problems,
        )
        if result.num_converted == 0:
            raise ConversionError(f"no case of {input_dir} converted", problems)

        split_content = None
        if splits is not None:
            converted = set(result.training_cases)
            split_content = [
                {
                    "train": [c for c in splits.train if c in converted],
                    "val": [c for c in splits.val if c in converted],
                }
            ]
            result.splits_file = target / "splits_final.json"
            result.split_source = {
                "dir": str(split_dir),
                "split": split,
                "files": {k: str(v) for k, v in splits.files.items()},
            }
            result.preprocessed_splits_file, split_problems = _preprocessed_splits(
                folder, split_content, overwrite
            )
            problems.extend(split_problems)
            _write_json(build / "splits_final.json", split_content)

        if strict and any(p.level != "note" for p in problems):
            raise ConversionError(f"--strict: {input_dir} has problems; nothing written", problems)
        # after --strict's check: these concern nnU-Net's other folders, not the source data
        problems.extend(_stale_outputs(dataset_id))
        for sub in ("imagesTs", "labelsTs"):
            if not any((build / sub).iterdir()):
                (build / sub).rmdir()
        _write_json(build / "dataset.json", _dataset_json(name, layout, outcomes))
        _write_json(build / CONVERSION_REPORT, result.to_dict(input_dir))
        swap_in(build, target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise

    if result.preprocessed_splits_file is not None and split_content is not None:
        result.preprocessed_splits_file.parent.mkdir(parents=True, exist_ok=True)
        _write_json(result.preprocessed_splits_file, split_content)
    return result
