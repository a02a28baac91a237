"""The names of the files and folders the commands write, each stated once.

Every writer and every reader of an output (the evaluation's subset table, the prediction's modality
report, the comparison's report and status, the conversion's report) imports its name from here, so
that a file written under one name is never looked for under another. Stems are names without a
suffix: their outputs come as `.json`, `.md` and `.csv` siblings, or as `_part_K_of_N` parts.
"""

from __future__ import annotations

# evaluate-subsets (and the validation of the trainers, in fold_K/VALIDATION_FOLDER)
SUBSET_TABLE_STEM = "subset_table"
SUBSET_TABLE = f"{SUBSET_TABLE_STEM}.json"
SUBSET_TABLE_MD = f"{SUBSET_TABLE_STEM}.md"
PER_CASE_TABLE = "subset_metrics_per_case.csv"
TIMING = "timing.json"
VALIDATION_FOLDER = "validation"
DICE_HEATMAP = "dice_heatmap.png"
SEGMENTATIONS_FOLDER = "segmentations"
"""--save-segmentations: one subfolder per subset."""
SUBSET_CASES_FOLDER = "subset_cases"
"""Per-case results (rows, timing, setting) of an evaluation, one JSON per case."""
SUBSET_PARTS_FOLDER = "subset_parts"
"""One manifest per part (`manifest_part_K_of_N.json`): its cases, failures, table layout and setting."""

# predict
MODALITY_REPORT_STEM = "modality_report"
MODALITY_REPORT = f"{MODALITY_REPORT_STEM}.json"
MODALITY_REPORT_CSV = f"{MODALITY_REPORT_STEM}.csv"
PREDICTION_RECORDS_FOLDER = "prediction_records"

# compare
COMPARISON_STEM = "comparison"
COMPARISON_JSON = f"{COMPARISON_STEM}.json"
COMPARISON_MD = f"{COMPARISON_STEM}.md"
COMPARISON_CSV = f"{COMPARISON_STEM}.csv"
COMPARISON_HEATMAP = f"{COMPARISON_STEM}_heatmap.png"
STATUS_JSON = "status.json"
STATUS_MD = "status.md"
COMPARE_COMMAND = "compare_command.json"

# convert-brats
CONVERSION_REPORT = "conversion_report.json"


def comparison_csv(kind: str) -> str:
    """The CSV of a further overlap metric kind of a comparison (the main one's is `COMPARISON_CSV`)."""
    return f"{COMPARISON_STEM}_{kind}.csv"
