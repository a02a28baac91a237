"""Reading published BraTS split lists: U-HVED/RFNet `trainN/valN/testN.txt`, BraTS 2020 `train/val/test.txt`.

Both styles hold one case id per line. The BraTS 2020 lists prefix ids with the grade (`HG_`/`LG_`),
which the case folders do not carry, so the prefix is stripped; a leading folder (`HGG/…`) is too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_GRADE_PREFIX = re.compile(r"^(HGG|LGG|HG|LG)_", re.I)
PARTS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class SplitLists:
    train: list[str]
    val: list[str]
    test: list[str]
    files: dict[str, Path]  # part -> file it came from

    def part_of(self) -> dict[str, str]:
        return {case: part for part in PARTS for case in getattr(self, part)}


def normalize_case_id(raw: str) -> str:
    name = raw.strip().replace("\\", "/").rsplit("/", 1)[-1]
    return _GRADE_PREFIX.sub("", name)


def _read_ids(path: Path) -> list[str]:
    ids = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ids.append(normalize_case_id(line))
    return ids


def _split_files(split_dir: Path, split: int) -> dict[str, Path]:
    numbered = {part: split_dir / f"{part}{split}.txt" for part in PARTS}
    if numbered["train"].is_file():
        return {part: path for part, path in numbered.items() if path.is_file()}
    plain = {part: split_dir / f"{part}.txt" for part in PARTS}
    if plain["train"].is_file():
        return {part: path for part, path in plain.items() if path.is_file()}
    available = sorted(
        int(m.group(1))
        for p in split_dir.glob("train*.txt")
        if (m := re.fullmatch(r"train(\d+)\.txt", p.name))
    )
    hint = f"; this folder has splits {available}" if available else ""
    raise ValueError(
        f"no split lists in {split_dir}: expected train{split}.txt (+ val{split}.txt, test{split}.txt, "
        f"U-HVED/RFNet style) or train.txt (+ val.txt, test.txt, BraTS 2020 style){hint}"
    )


def read_split_dir(split_dir: Path | str, split: int = 1) -> SplitLists:
    """Read one split; raises ValueError when the files are missing or a case id is listed twice."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise ValueError(f"split folder {split_dir} does not exist")
    files = _split_files(split_dir, split)
    lists = {part: _read_ids(files[part]) if part in files else [] for part in PARTS}
    seen: dict[str, str] = {}
    for part in PARTS:
        for case in lists[part]:
            if case in seen:
                where = (
                    files[seen[case]].name
                    if seen[case] == part
                    else f"{files[seen[case]].name} and {files[part].name}"
                )
                raise ValueError(f"case {case} is listed twice ({where}) in {split_dir}")
            seen[case] = part
    return SplitLists(lists["train"], lists["val"], lists["test"], files)
