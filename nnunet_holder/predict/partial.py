"""Partial-modality prediction of a folder: each case with its own available modalities.

`plan_folder` decides, before any model is loaded, which cases this run predicts: nnU-Net's
split into parts (`cases[part_id::num_parts]` of the sorted case list, so N machines can share
one folder), then what to do with outputs that already exist (refuse, skip with
`continue_prediction`, or replace with `overwrite`). `predict_folder` streams the cases through
pipeline.py and writes the report (JSON and CSV beside the segmentations): per case the
modalities it had, the ones missing, zero-filled, unusable (all NaN, no contrast) or ignored,
notes naming each file whose voxels were changed or not used (inputs.py), any error, what the
model's validation says about the subset it had (expected.py), and the setting that produced it
(provenance.py: model, folds, checkpoint, mirroring, step size, --modalities). A run that is one
of several parts writes its own report (`modality_report_part_K_of_N`), which `nnunet-holder
merge-parts` joins only when every row has one setting.

Each predicted case also gets a record of its setting (`prediction_records/CASE.json`), written
after the case's earlier outputs are removed and before its new segmentation is renamed into
place. So a segmentation beside a record was made under that record's setting, even after an
interruption, and `--continue_prediction` skips only cases recorded under its own setting: it
refuses, naming the difference, a folder holding cases of another model or setting, or
segmentations without a record.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nnunet_holder.file_names import MODALITY_REPORT_STEM, PREDICTION_RECORDS_FOLDER
from nnunet_holder.parts import Part, atomic_write
from nnunet_holder.predict.expected import ValidationTable
from nnunet_holder.predict.inputs import CaseFiles, scan_folder
from nnunet_holder.predict.pipeline import CaseReport, output_files, predict_cases, remove_partial_files
from nnunet_holder.provenance import Setting, refuse_mixing

"""Per predicted case, the setting that produced its segmentation (`CASE.json`), inside the output folder."""


def prediction_setting(
    model: Mapping[str, object], modalities: Sequence[int] | None, channel_names: Mapping[str, str]
) -> Setting:
    """What a prediction depends on: `model` (provenance.model_setting) and the --modalities kept."""
    kept = None if modalities is None else [channel_names[str(i)] for i in modalities]
    return {**model, "modalities": kept}


def record_file(output_dir: Path, case: str) -> Path:
    return output_dir / PREDICTION_RECORDS_FOLDER / f"{case}.json"


def _recorded_setting(output_dir: Path, case: str) -> dict | None:
    path = record_file(output_dir, case)
    return json.loads(path.read_text())["setting"] if path.is_file() else None


def _start_case(output_dir: Path, case: str, file_ending: str, setting: Setting) -> None:
    # the earlier outputs go before the record is written: a record never stands beside another
    # run's segmentation, whenever this run is interrupted
    for old in output_files(output_dir, case, file_ending, save_probabilities=True):
        old.unlink(missing_ok=True)
    path = record_file(output_dir, case)
    path.parent.mkdir(exist_ok=True)
    atomic_write(path, json.dumps({"setting": setting}))


@dataclass
class FolderPlan:
    cases: list[CaseFiles]  # this part's cases, sorted
    to_predict: list[CaseFiles]
    skipped: list[str]  # outputs exist and continue_prediction was given
    setting: Setting  # what this run's predictions depend on (prediction_setting)


def plan_folder(
    input_dir: Path,
    output_dir: Path,
    file_ending: str,
    num_channels: int,
    part: Part = Part(),  # noqa: B008 (frozen)
    overwrite: bool = False,
    continue_prediction: bool = False,
    save_probabilities: bool = False,
    *,
    setting: Setting,
) -> FolderPlan:
    """This run's cases and what exists of them already; refuses (SystemExit) before any work.

    With `continue_prediction`, every case to skip must be recorded under `setting`.
    """
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
    for case in skipped:
        refuse_mixing(
            f"{output_dir}: {case}{file_ending}",
            _recorded_setting(output_dir, case),
            setting,
            "recorded",
            "this run",
            "Pass --overwrite to predict every case again with this run's setting, or choose another -o.",
        )
    return FolderPlan(cases, [c for c in cases if c.case not in skipped], skipped, setting)


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
    ending = predictor.dataset_json["file_ending"]
    new = predict_cases(
        predictor,
        plan.to_predict,
        output_dir,
        modalities,
        num_processes_preprocessing,
        num_processes_export,
        save_probabilities,
        progress,
        on_predicted=lambda case: _start_case(output_dir, case, ending, plan.setting),
    )
    earlier = _previous_reports(output_dir / f"{MODALITY_REPORT_STEM}{part.suffix}.json")
    by_case = {r.case: r for r in new}
    for case in plan.skipped:
        by_case[case] = earlier.get(case, CaseReport(case))
        by_case[case].status = "skipped"
    reports = [by_case[c.case] for c in plan.cases]
    write_report(reports, output_dir, part, expected, plan.setting)
    return reports


def _previous_reports(path: Path) -> dict[str, CaseReport]:
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text())
    fields = CaseReport.__dataclass_fields__
    return {r["case"]: CaseReport(**{k: v for k, v in r.items() if k in fields}) for r in rows}


def write_report(
    reports: list[CaseReport], output_dir: Path, part: Part, expected: ValidationTable, setting: Setting
) -> None:
    """The report of `reports` (JSON, CSV) for this part, each row with `setting`; each file written
    whole, then renamed."""
    rows = [
        {**vars(r), **expected.expectation(r.used if r.status != "failed" else []), "setting": setting}
        for r in reports
    ]
    _write_rows(rows, output_dir / f"{MODALITY_REPORT_STEM}{part.suffix}")


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
    files = sorted(output_dir.glob(f"{MODALITY_REPORT_STEM}_part_*_of_*.json"))
    if not files:
        raise SystemExit(f"no part reports ({MODALITY_REPORT_STEM}_part_K_of_N.json) in {output_dir}")
    parts = {Part.from_suffix(f.stem): f for f in files}
    splits = sorted({p.num_parts for p in parts})
    if len(splits) != 1:
        raise SystemExit(
            f"{output_dir} holds part reports of different splits ({splits} parts); remove the stale ones"
        )
    n = splits[0]
    if missing := sorted(set(range(n)) - {p.part_id for p in parts}):
        raise SystemExit(f"{output_dir}: part(s) {missing} of {n} have not written their report yet")
    by_file = {f: json.loads(f.read_text()) for f in files}
    wanted = next((row.get("setting") for rows in by_file.values() for row in rows), None) or {}
    for f, rows in by_file.items():
        for row in rows:
            refuse_mixing(
                f"{output_dir}: case {row['case']} of {f.name}",
                row.get("setting"),
                wanted,
                f.name,
                files[0].name,
                "Re-run that part with --overwrite and the other parts' setting, or all with one setting.",
            )
    rows = sorted((row for rows in by_file.values() for row in rows), key=lambda r: r["case"])
    _write_rows(rows, output_dir / MODALITY_REPORT_STEM)
    return output_dir / f"{MODALITY_REPORT_STEM}.json"
