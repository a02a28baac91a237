"""The cases of an evaluation and what its output folder records of them, checked before any work.

An evaluation folder holds one JSON per evaluated case (`subset_cases/CASE.json`: its rows, its
timing and the setting that produced it) and one manifest per part (`subset_parts/`). The setting
(provenance.py) is the model and its inference options, the protocol, `--postprocess-et`, the
channels and the metric columns. A continued run keeps only cases recorded under its own setting,
and the parts merge only when every part and every case they list share one setting; anything
else is refused with the difference named. Nothing here imports torch, so `evaluate-subsets`
refuses a re-run or a continuation at once, before the model is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from nnunet_holder.evaluate.metrics import metric_columns, regions_from_dataset_labels
from nnunet_holder.file_names import SUBSET_CASES_FOLDER
from nnunet_holder.parts import Part
from nnunet_holder.predict.inputs import CaseFiles, scan_folder
from nnunet_holder.provenance import Setting, refuse_mixing


def image_cases(images_dir: Path, dataset_json: dict, part: Part = Part()) -> list[CaseFiles]:  # noqa: B008
    """This part's cases of an image folder (sorted, nnU-Net's split); none at all is an error."""
    ending = dataset_json["file_ending"]
    cases = part.select(scan_folder(images_dir, ending, len(dataset_json["channel_names"])))
    if not cases:
        raise SystemExit(f"no files named CASE_XXXX{ending} in {images_dir} for part {part.part_id}")
    return cases


def evaluation_setting(
    model: Mapping[str, object],
    protocol: str,
    postprocess_et: int | None,
    dataset_json: dict,
    metrics: Sequence[str] | None = None,
) -> Setting:
    """What an evaluation's results depend on: `model` (provenance.model_setting) and the evaluation's
    own, `metrics` its metric columns (default: the legacy Dice and HD95 of the dataset's regions)."""
    _, region_names = regions_from_dataset_labels(dataset_json["labels"])
    return {
        **model,
        "protocol": protocol,
        "postprocess_et": postprocess_et,
        "channels": dict(dataset_json["channel_names"]),
        "metrics": list(metrics) if metrics is not None else metric_columns(region_names),
    }


def case_file(out_dir: Path, case: str) -> Path:
    return out_dir / SUBSET_CASES_FOLDER / f"{case}.json"


def existing_cases(out_dir: Path, cases: Sequence[str]) -> list[str]:
    """The cases of `cases` that an earlier run has already evaluated into `out_dir`."""
    return [c for c in cases if case_file(out_dir, c).is_file()]


def _recorded(path: Path) -> dict:
    return json.loads(path.read_text())


def refuse_continuing(out_dir: Path, cases: Sequence[str], setting: Mapping[str, object]) -> None:
    """SystemExit unless every case of `cases` in `out_dir` was evaluated under `setting`."""
    for case in cases:
        refuse_mixing(
            f"{out_dir}: the evaluation of case {case} ({case_file(out_dir, case)})",
            _recorded(case_file(out_dir, case)).get("setting"),
            setting,
            "recorded",
            "this run",
            "Pass --overwrite to evaluate every case again with this run's setting, or choose another -o.",
        )


def refuse_mixed_parts(out_dir: Path, manifests: Mapping[int, dict]) -> None:
    """SystemExit unless every part (manifest by part id) and every case it lists share part 0's setting."""
    wanted = manifests[0].get("setting") or {}
    for k, manifest in sorted(manifests.items()):
        remedy = (
            "Evaluate again with --overwrite."
            if len(manifests) == 1
            else f"Re-run part {k} with --overwrite and part 0's setting, or every part with one setting."
        )
        refuse_mixing(
            f"{out_dir}: part {k} of the evaluation",
            manifest.get("setting"),
            wanted,
            f"part {k}",
            "part 0",
            remedy,
        )
        for case in manifest["cases"]:
            path = case_file(out_dir, case)
            if not path.is_file():
                raise SystemExit(f"{out_dir}: case {case} is listed by part {k} but {path} does not exist")
            refuse_mixing(
                f"{out_dir}: the evaluation of case {case} ({path})",
                _recorded(path).get("setting"),
                wanted,
                "recorded",
                f"part {k}",
                remedy,
            )
