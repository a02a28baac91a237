"""The conversion's outcome: `ConversionResult`, its `conversion_report.json` and its printed summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnunet_holder.conversion.problems import LEVELS, Problem

from nnunet_holder.file_names import CONVERSION_REPORT

_LISTED = 20  # problems shown per level in the printed summary; the JSON report has all of them


@dataclass
class ConversionResult:
    output_dir: Path
    layout: str
    convention: str
    training_cases: list[str]
    test_cases: list[str]
    partial_cases: dict[str, list[int]]  # case -> channels with a source file (the others absent)
    skipped: dict[str, list[Problem]]
    problems: list[Problem]
    splits_file: Path | None = None
    preprocessed_splits_file: Path | None = None
    split_source: dict[str, Any] = field(default_factory=dict)

    @property
    def num_converted(self) -> int:
        return len(self.training_cases) + len(self.test_cases)

    @property
    def report_file(self) -> Path:
        return self.output_dir / CONVERSION_REPORT

    def to_dict(self, input_dir: Path) -> dict[str, Any]:
        return {
            "input": str(input_dir),
            "output": str(self.output_dir),
            "layout": self.layout,
            "brats_convention": self.convention,
            "training_cases": self.training_cases,
            "test_cases": self.test_cases,
            "partial_cases": self.partial_cases,
            "skipped": {case: [p.message for p in problems] for case, problems in self.skipped.items()},
            "split": self.split_source or None,
            "problems": [p.to_dict() for p in self.problems],
        }


def format_problems(problems: list[Problem]) -> list[str]:
    lines = []
    for level in LEVELS:
        of_level = [p for p in problems if p.level == level]
        lines.extend(f"  {p}" for p in of_level[:_LISTED])
        if len(of_level) > _LISTED:
            lines.append(f"  ... and {len(of_level) - _LISTED} more {level}s (see {CONVERSION_REPORT})")
    return lines


def format_summary(result: ConversionResult) -> str:
    lines = [
        f"Converted {result.num_converted} cases ({len(result.training_cases)} in imagesTr, "
        f"{len(result.test_cases)} in imagesTs, {len(result.partial_cases)} of them partial) "
        f"from the {result.layout} layout (BraTS {result.convention} labels) into {result.output_dir}",
        f"Skipped {len(result.skipped)} cases" + (":" if result.skipped else "."),
    ]
    for case, problems in sorted(result.skipped.items()):
        reasons = "; ".join(p.message for p in problems if p.level != "note")
        lines.append(f"  {case}: {reasons}")
    if result.problems:
        lines.append(f"Problems ({len(result.problems)}):")
        lines.extend(format_problems(result.problems))
    lines.append(f"Report: {result.report_file}")
    return "\n".join(lines)
