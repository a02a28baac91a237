"""Partial-modality prediction of a folder: each case with its own available modalities.

Reads every case's present channel files (inputs.py), zero-fills the missing ones and, with a
forced modality set, also the others; then hands the arrays to nnU-Net's own preprocessing,
sliding-window prediction and export through HolderPredictor, in chunks to bound memory. A case
that cannot be read fails alone; the report (JSON and CSV beside the segmentations) lists, per
case, the modalities it had, the ones missing, zero-filled or ignored, and any error.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nnunetv2.configuration import default_num_processes
from tqdm import tqdm

from nnunet_holder.predict.inputs import CaseError, CaseImages, read_case, scan_folder
from nnunet_holder.predict.predictor import HolderPredictor

REPORT_STEM = "modality_report"


@dataclass
class CaseReport:
    case: str
    status: str = "ok"
    used: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    zero_filled: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    error: str = ""


def _names(indices: Sequence[int], channel_names: dict[str, str]) -> list[str]:
    return [channel_names[str(i)] for i in indices]


def _prepare(case: CaseImages, forced: tuple[int, ...] | None, report: CaseReport, names: dict) -> None:
    used = case.present if forced is None else tuple(c for c in case.present if c in forced)
    ignored = () if forced is None else tuple(c for c in case.present if c not in forced)
    for c in ignored:
        case.images[c] = 0
    report.used = _names(used, names)
    report.missing = _names(case.missing, names)
    report.zero_filled = _names(case.zero_filled, names)
    report.ignored = _names(ignored, names)
    if not used:
        wanted = "" if forced is None else f" among the requested {_names(forced, names)}"
        raise CaseError(case.case, None, f"no usable modality{wanted}: every channel is missing or all zero")


def predict_folder(
    predictor: HolderPredictor,
    input_dir: Path,
    output_dir: Path,
    modalities: tuple[int, ...] | None = None,
    overwrite: bool = False,
    chunk_size: int = 8,
    num_processes: int = 2,
) -> list[CaseReport]:
    """Predict every case of `input_dir` into `output_dir`; returns one report per case."""
    names = predictor.dataset_json["channel_names"]
    ending = predictor.dataset_json["file_ending"]
    output_dir.mkdir(parents=True, exist_ok=True)
    reader = predictor.plans_manager.image_reader_writer_class()
    cases = scan_folder(input_dir, ending, len(names))
    if not cases:
        raise SystemExit(f"no files named CASE_XXXX{ending} in {input_dir}")
    reports: list[CaseReport] = []
    ready: list[tuple[CaseImages, CaseReport]] = []

    def flush() -> None:
        if not ready:
            return
        predictor.predict_from_list_of_npy_arrays(
            [c.images for c, _ in ready],
            None,
            [c.properties for c, _ in ready],
            [str(output_dir / c.case) for c, _ in ready],
            num_processes=min(num_processes, len(ready)),
            num_processes_segmentation_export=min(default_num_processes, num_processes),
        )
        ready.clear()

    for files in tqdm(cases, desc="reading cases", unit="case"):
        report = CaseReport(files.case)
        reports.append(report)
        target = output_dir / f"{files.case}{ending}"
        try:
            if target.exists() and not overwrite:
                raise CaseError(files.case, target, "output exists; pass --overwrite to replace it")
            case = read_case(files, reader, len(names))
            _prepare(case, modalities, report, names)
        except CaseError as e:
            report.status, report.error = "failed", str(e)
            tqdm.write(f"ERROR {e}")
            continue
        ready.append((case, report))
        if len(ready) >= chunk_size:
            flush()
    flush()
    write_report(reports, output_dir)
    return reports


def write_report(reports: list[CaseReport], output_dir: Path) -> None:
    rows = [vars(r) for r in reports]
    (output_dir / f"{REPORT_STEM}.json").write_text(json.dumps(rows, indent=2))
    with open(output_dir / f"{REPORT_STEM}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()})
