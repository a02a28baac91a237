"""Per-case problem records of a BraTS conversion: which case, which file, how bad, and why.

Every check in the conversion reports through `Problem` so that the command-line summary, the
`conversion_report.json` written beside `dataset.json` and `--strict` all see the same list.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Level = Literal["error", "warning", "note"]

# "note": the case converted as expected after a routine fix (float seg rounded, known misnamed seg);
# "warning": the case (or an id) was left out or changed in a way the user must know about;
# "error": the case's data are wrong and it was not converted.
LEVELS: tuple[Level, ...] = ("error", "warning", "note")


@dataclass(frozen=True)
class Problem:
    case: str
    file: str
    level: Level
    message: str

    def __str__(self) -> str:
        where = f" [{self.file}]" if self.file else ""
        return f"{self.level.upper()} {self.case}{where}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class ConversionError(RuntimeError):
    """A conversion that produced nothing usable (or, with `strict`, met any problem)."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])
