"""Mapping BraTS label maps to and from nnU-Net's nested region labels, with checks of their values.

The conventions themselves (which BraTS year uses which label values, and nnU-Net's region labels)
are stated in `nnunet_holder.brats`; this module applies them to arrays and refuses what they do not
allow (non-integer values, labels the convention does not know).
"""

from __future__ import annotations

import numpy as np

from nnunet_holder.brats import (
    BRATS_LABEL_NAMES,
    FROM_NNUNET,
    RESECTION_CAVITY_2024,
    TO_NNUNET,
    normalize_convention,
)

# |x - round(x)| above this in a float seg means it is not a label map (e.g. it was resampled)
INTEGER_TOLERANCE = 1e-3


def describe_convention(convention: str) -> str:
    """'BraTS 2023+ labels (1 NETC, 2 SNFH, 3 ET)', for messages."""
    convention = normalize_convention(convention)
    years = "2018-2021" if convention == "2018" else "2023+"
    names = ", ".join(f"{value} {name}" for value, name in BRATS_LABEL_NAMES[convention].items())
    return f"BraTS {years} labels ({names})"


def _as_integer_labels(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    notes: list[str] = []
    if np.issubdtype(values.dtype, np.integer):
        return values, notes
    if not np.issubdtype(values.dtype, np.floating):
        raise ValueError(f"segmentation has non-numeric type {values.dtype}")
    rounded = np.rint(values)
    deviation = np.abs(values - rounded)
    bad = ~(deviation <= INTEGER_TOLERANCE)  # also catches NaN
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"segmentation has {int(bad.sum())} non-integer voxel(s) (e.g. {float(values[index])} at "
            f"array index {index}); a label map must hold whole numbers"
        )
    if deviation.any():
        notes.append(
            f"float segmentation ({values.dtype}) rounded to integers (max deviation {deviation.max():.2g})"
        )
    else:
        notes.append(f"float segmentation ({values.dtype}) cast to integers")
    return rounded.astype(np.int64), notes


def _lookup(values: np.ndarray, mapping: dict[int, int], what: str) -> np.ndarray:
    lowest = int(values.min()) if values.size else 0
    if lowest < 0:
        present = np.unique(values)
    else:
        # bincount is several times faster than np.unique on a 240×240×155 label map
        present = np.flatnonzero(np.bincount(values.ravel()))
    unexpected = sorted(int(v) for v in present if int(v) not in mapping)
    if unexpected:
        raise ValueError(f"unexpected label values {unexpected}; {what} allows only {sorted(mapping)}")
    table = np.zeros(max(mapping) + 1, dtype=np.uint8)
    for source, target in mapping.items():
        table[source] = target
    return table[values]


def brats_to_nnunet(values: np.ndarray, convention: str) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Map a BraTS seg to nnU-Net region labels; returns (uint8 labels, [(level, message), ...]).

    Raises ValueError for non-integer values or labels the convention does not know.
    """
    convention = normalize_convention(convention)
    integers, notes = _as_integer_labels(np.asarray(values))
    messages = [("note", n) for n in notes]
    mapped = _lookup(integers, TO_NNUNET[convention], f"the BraTS {convention} convention")
    if convention == "2023":
        cavity = int(np.count_nonzero(integers == RESECTION_CAVITY_2024))
        if cavity:
            messages.append(
                ("warning", f"label 4 (resection cavity, BraTS 2024) in {cavity} voxels mapped to background")
            )
    return mapped, messages


def nnunet_to_brats(values: np.ndarray, convention: str) -> np.ndarray:
    """Map nnU-Net region labels (0/1/2/3) back to BraTS labels; raises ValueError on other values."""
    convention = normalize_convention(convention)
    integers, _ = _as_integer_labels(np.asarray(values))
    return _lookup(integers, FROM_NNUNET[convention], "an nnU-Net BraTS region prediction")
