"""Partial-modality prediction of a folder: each case with its own available modalities.

`plan_folder` decides, before any model is loaded, which cases this run predicts: nnU-Net's
split into parts (`cases[part_id::num_parts]` of the sorted case list, so N machines can share
one folder), then what to do with outputs that already exist (refuse, skip with
`continue_prediction`, or replace with `overwrite`). `predict_folder` streams the cases through
pipeline.py and writes the report (JSON and CSV beside the segmentations): per case the
modalities it had, the ones missing, zero-filled, unusable (all NaN, no contrast) or ignored,
notes naming each file whose voxels were changed or not used (inputs.py), any error, and what
the model's validation says about the subset it had (expected.py). A run that is one of several parts writes
its own report (`modality_report_part_K_of_N`), which `nnunet-holder merge-parts` joins.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from nnunet_holder.parts import Part, atomic_write
from nnunet_holder.predict.expected import ValidationTable
from nnunet_holder.predict.inputs import CaseFiles, scan_folder
from nnunet_holder.predict.pipeline import CaseReport, output_files, predict_cases, remove_partial_files

REPORT_STEM = "modality_report"


@dataclass
class FolderPlan:
    cases: list[CaseFiles]  # this part's cases, sorted
    to_predict: list[CaseFiles]
    skipped: list[str]  # outputs exist and continue_prediction was given


def plan_folder(
    input_dir: Path,
    output_dir: Path,
    file_ending: str,
    num_channels: int,
    part: Part = Part(),  # noqa: B008 (frozen)
    overwrite: bool = False,
    continue_prediction: bool = False,
    save_probabilities: bool = False,
) -> FolderPlan:
    """This run's cases and what exists of them already; refuses (SystemExit) before any work."""
    if overwrite and continue_prediction:
        raise SystemExit("--overwrite and --continue_prediction contradict each other; pass one")
    if not input_dir.is_dir():
        raise SystemExit(f"-i {input_dir}: not a folder")
    cases = part.select(scan_folder(input_dir, file_ending, num_channels))
    if not cases:
        raise SystemExit(f"no files named CASE_XXXX{file_ending} in {input_dir} for part {part.part_id}")
    done = [
        c.case
        for c in cases
        if all(f.is_file() for f in output_files(output_dir, c.case, file_ending, save_probabilities))
    ]
    started = [c.case for c in cases if (output_dir / f"{c.case}{file_ending}").is_file()]
    if started and not (overwrite or continue_prediction):
        raise SystemExit(
            f"{output_dir} already holds segmentations of {len(started)} of this run's {len(cases)} cases "
            f"(e.g. {started[0]}{file_ending}); pass --continue_prediction to predict only the others, "
            "or --overwrite to replace them"
        )
    skipped = done if continue_prediction else []
    return FolderPlan(cases, [c for c in cases if c.case not in skipped], skipped)


def predict_folder(
    predictor,
    plan: FolderPlan,
    output_dir: Path,
    expected: ValidationTable,
    modalities: tuple[int, ...] | None = None,
    part: Part = Part(),  # noqa: B008 (frozen)
    num_processes_preprocessing: int = 3,
    num_processes_export: int = 3,
    save_probabilities: bool = False,
    progress: bool = True,
) -> list[CaseReport]:
    """Predict the plan's cases into `output_dir`; returns one report per case of the part."""
    output_dir.mkdir(parents=True, exist_ok=True)
    remove_partial_files(output_dir, [c.case for c in plan.to_predict])
    new = predict_cases(
        predictor,
        plan.to_predict,
        output_dir,
        modalities,
        num_processes_preprocessing,
        num_processes_export,
        save_probabilities,
        progress,
    )
    earlier = _previous_reports(output_dir / f"{REPORT_STEM}{part.suffix}.json")
    by_case = {r.case: r for r in new}
    for case in plan.skipped:
        by_case[case] = earlier.get(case, CaseReport(case))
        by_case[case].status = "skipped"
    reports = [by_case[c.case] for c in plan.cases]
    write_report(reports, output_dir, part, expected)
    return reports


def _previous_reports(path: Path) -> dict[str, CaseReport]:
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text())
    fields = CaseReport.__dataclass_fields__
    return {r["case"]: CaseReport(**{k: v for k, v in r.items() if k in fields}) for r in rows}


def write_report(reports: list[CaseReport], output_dir: Path, part: Part, expected: ValidationTable) -> None:
    """The report of `reports` (JSON, CSV) for this part; each file written whole, then renamed."""
    rows = [{**vars(r), **expected.expectation(r.used if r.status != "failed" else [])} for r in reports]
    _write_rows(rows, output_dir / f"{REPORT_STEM}{part.suffix}")


def _write_rows(rows: list[dict], stem: Path) -> None:
    json_file, csv_file = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".csv")
    atomic_write(json_file, json.dumps(rows, indent=2))
    columns = list(dict.fromkeys(k for row in rows for k in row))
    temp = csv_file.with_name(f".{csv_file.name}.tmp")
    with open(temp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    os.replace(temp, csv_file)


def _csv_cell(value):
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def merge_reports(output_dir: Path) -> Path:
    """Join the part reports of `output_dir` into one `modality_report`; every part must be there."""
    files = sorted(output_dir.glob(f"{REPORT_STEM}_part_*_of_*.json"))
    if not files:
        raise SystemExit(f"no part reports ({REPORT_STEM}_part_K_of_N.json) in {output_dir}")
    parts = {Part.from_suffix(f.stem): f for f in files}
    splits = sorted({p.num_parts for p in parts})
    if len(splits) != 1:
        raise SystemExit(
            f"{output_dir} holds part reports of different splits ({splits} parts); remove the stale ones"
        )
    n = splits[0]
    if missing := sorted(set(range(n)) - {p.part_id for p in parts}):
        raise SystemExit(f"{output_dir}: part(s) {missing} of {n} have not written their report yet")
    rows = sorted((row for f in files for row in json.loads(f.read_text())), key=lambda r: r["case"])
    _write_rows(rows, output_dir / REPORT_STEM)
    return output_dir / f"{REPORT_STEM}.json"
