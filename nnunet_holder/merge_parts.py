"""`nnunet-holder merge-parts FOLDER`: join the outputs of `-num_parts N -part_id K` runs.

After every part of `predict` or `evaluate-subsets` has finished into one folder, this writes the
joint modality report or subset table (predict/partial.py `merge_reports`, evaluate/runner.py
`merge_evaluation`); both refuse while a part is missing or when the parts were made under
different settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nnunet_holder.file_names import MODALITY_REPORT_STEM, SUBSET_PARTS_FOLDER, SUBSET_TABLE_MD, TIMING


def _merge(args: argparse.Namespace) -> int:
    from nnunet_holder.evaluate.runner import merge_evaluation, print_summary
    from nnunet_holder.predict.partial import merge_reports

    folder = Path(args.folder)
    merged = False
    if any(folder.glob(f"{MODALITY_REPORT_STEM}_part_*_of_*.json")):
        print(f"merged the prediction reports into {merge_reports(folder)}")
        merged = True
    if (folder / SUBSET_PARTS_FOLDER).is_dir():
        summary = merge_evaluation(folder)
        print_summary(summary, json.loads((folder / TIMING).read_text())["protocol"])
        print(f"merged the evaluation parts into {folder / SUBSET_TABLE_MD}")
        merged = True
    if not merged:
        raise SystemExit(f"{folder} holds no parts of a prediction or an evaluation")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "merge-parts",
        help="join the outputs of -num_parts runs (predict reports, evaluate-subsets tables)",
        description="After every part of `predict` or `evaluate-subsets -num_parts N -part_id K` has "
        "finished into one folder, write the joint modality_report or subset table. Refuses while a part "
        "is missing.",
    )
    p.add_argument("folder", help="the -o folder the parts shared")
    p.set_defaults(func=_merge)
