"""Recognising the BraTS raw layouts (2018/2019 HGG/LGG, 2020, 2021, 2023/2024 GLI) and listing their cases.

A layout is known by its case-folder names; inside a case folder the files are
`<case><sep><suffix>.nii[.gz]`. Discovery only reads directory listings, never file contents, and
reports file-level quirks (duplicates, a segmentation under a non-standard name) as problems.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from nnunet_holder.conversion.problems import Problem

from nnunet_holder.brats import FILE_NAMING, SEG
from nnunet_holder.brats import MODALITIES as MODALITIES  # re-exported: the conversion reads it here

_SEARCH_DEPTH = 3  # input/, input/HGG/, input/MICCAI_BraTS_2018_Data_Training/HGG/


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    case_pattern: re.Pattern[str]
    separator: str
    suffixes: dict[str, str]  # file-name suffix (lower case) -> modality or SEG
    convention: str  # label convention, see labels.py
    example: str  # a case folder as the challenge ships it


def _layout(name: str, description: str, pattern: str, example: str) -> Layout:
    convention = "2023" if name == "brats2023" else "2018"
    return Layout(
        name=name,
        description=description,
        case_pattern=re.compile(pattern, re.I),
        separator=FILE_NAMING[convention].separator,
        suffixes=FILE_NAMING[convention].roles,
        convention=convention,
        example=example,
    )


LAYOUTS: tuple[Layout, ...] = (
    _layout("brats2018", "BraTS 2018 (HGG/LGG)", r"Brats18_\w+", "HGG/Brats18_CBICA_AAB_1"),
    _layout("brats2019", "BraTS 2019 (HGG/LGG)", r"BraTS19_\w+", "HGG/BraTS19_CBICA_AAB_1"),
    _layout("brats2020", "BraTS 2020", r"BraTS20_(Training|Validation|Testing)_\d+", "BraTS20_Training_001"),
    _layout("brats2021", "BraTS 2021", r"BraTS2021_\d{5}", "BraTS2021_00000"),
    _layout("brats2023", "BraTS 2023/2024 GLI", r"BraTS-GLI-\d{5}-\d{3}", "BraTS-GLI-00000-000"),
)


class LayoutError(ValueError):
    """The input folder is not (or not only) one recognisable BraTS layout."""


@dataclass
class CaseSource:
    case_id: str
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)  # modality or SEG -> file
    problems: list[Problem] = field(default_factory=list)

    def expected_name(self, layout: Layout, role: str) -> str:
        suffix = next(s for s, r in layout.suffixes.items() if r == role)
        return f"{self.case_id}{layout.separator}{suffix}.nii.gz"


def _nifti_stem(name: str) -> str | None:
    lower = name.lower()
    for ext in (".nii.gz", ".nii"):
        if lower.endswith(ext):
            return name[: -len(ext)]
    return None


def _match_layout(name: str) -> Layout | None:
    return next((layout for layout in LAYOUTS if layout.case_pattern.fullmatch(name)), None)


def _find_case_folders(root: Path) -> list[tuple[Layout, Path]]:
    found: list[tuple[Layout, Path]] = []
    pending = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        with os.scandir(folder) as entries:
            subfolders = sorted(Path(e.path) for e in entries if e.is_dir())
        for sub in subfolders:
            layout = _match_layout(sub.name)
            if layout is not None:
                found.append((layout, sub))
            elif depth + 1 < _SEARCH_DEPTH:
                pending.append((sub, depth + 1))
    return found


def _read_case(layout: Layout, folder: Path) -> CaseSource:
    case = CaseSource(case_id=folder.name, folder=folder)
    prefix = (folder.name + layout.separator).lower()
    candidates: dict[str, list[Path]] = {}
    unrecognised: list[Path] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        stem = _nifti_stem(path.name)
        if stem is None:
            continue
        suffix = stem[len(prefix) :].lower() if stem.lower().startswith(prefix) else None
        role = layout.suffixes.get(suffix) if suffix is not None else None
        if role is None:
            unrecognised.append(path)
        else:
            candidates.setdefault(role, []).append(path)
    for role, paths in candidates.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            case.problems.append(
                Problem(case.case_id, str(folder), "error", f"several files for {role}: {names}")
            )
        else:
            case.files[role] = paths[0]
    if SEG not in candidates:
        # BraTS 2020 case 355 ships its seg as W39_1998.09.19_Segm.nii: accept one such file, loudly.
        segs = [p for p in unrecognised if "seg" in p.name.lower()]
        if len(segs) == 1:
            case.files[SEG] = segs[0]
            case.problems.append(
                Problem(
                    case.case_id,
                    str(segs[0]),
                    "note",
                    f"segmentation found under the non-standard name {segs[0].name} (expected "
                    f"{case.expected_name(layout, SEG)}; a known quirk of BraTS 2020 case 355); "
                    "used as the seg",
                )
            )
        elif len(segs) > 1:
            names = ", ".join(p.name for p in segs)
            case.problems.append(
                Problem(
                    case.case_id,
                    str(folder),
                    "error",
                    f"no standard seg file and several candidates: {names}",
                )
            )
    return case


def discover(input_dir: Path | str) -> tuple[Layout, list[CaseSource]]:
    """Detect the layout of a BraTS raw folder and list its cases, sorted by case id."""
    root = Path(input_dir)
    if not root.is_dir():
        raise LayoutError(f"input folder {root} does not exist or is not a folder")
    folders = _find_case_folders(root)
    if not folders:
        examples = "; ".join(f"{lay.description}: {lay.example}" for lay in LAYOUTS)
        raise LayoutError(
            f"no BraTS case folders found under {root} (searched {_SEARCH_DEPTH} levels; {examples})"
        )
    layouts = sorted({layout.name for layout, _ in folders})
    if len(layouts) > 1:
        raise LayoutError(
            f"{root} mixes several BraTS layouts ({', '.join(layouts)}); convert them separately"
        )
    layout = folders[0][0]
    by_id: dict[str, list[Path]] = {}
    for _, folder in folders:
        by_id.setdefault(folder.name, []).append(folder)
    duplicates = {cid: paths for cid, paths in by_id.items() if len(paths) > 1}
    if duplicates:
        detail = "; ".join(
            f"{cid}: {', '.join(map(str, paths))}" for cid, paths in sorted(duplicates.items())
        )
        raise LayoutError(f"case ids found in several folders under {root}: {detail}")
    cases = [_read_case(layout, folder) for _, folder in sorted(folders, key=lambda lf: lf[1].name)]
    return layout, cases
