"""The reference label maps an evaluation accepts: those whose values are all labels of the dataset.

The metrics build each region from the dataset's label values, so a voxel of any other value
would silently count as background (raw BraTS labels 0/1/2/4 given to a dataset of nnU-Net's
BraTS regions 0/1/2/3 lose the enhancing tumour and shrink the whole tumour). A reference with a
value outside dataset.json's `labels` therefore fails its case, naming the file and the values,
and where the values are those of raw BraTS on a dataset with convert-brats' region labels, the
message says so and names the command that converts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nnunet_holder.brats import NNUNET_LABELS, TO_NNUNET
from nnunet_holder.predict.inputs import CaseError

RAW_BRATS_VALUES = frozenset(v for mapping in TO_NNUNET.values() for v in mapping)
"""Every value of a raw BraTS label map (2018-2021: 0/1/2/4; 2023-2024: 0/1/2/3, 4 = resection cavity)."""


def dataset_label_values(labels: Mapping[str, int | Sequence[int]]) -> set[int]:
    """Every label value that dataset.json's `labels` names (region datasets list theirs)."""
    values: set[int] = set()
    for value in labels.values():
        values.update([int(value)] if isinstance(value, (int, np.integer)) else (int(v) for v in value))
    return values


def _shown(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def check_reference_labels(
    case: str, label_file: Path, seg: np.ndarray, labels: Mapping[str, int | Sequence[int]]
) -> None:
    """Raise CaseError when `seg` (read from `label_file`) holds a value that `labels` does not name."""
    allowed = dataset_label_values(labels)
    present = [_shown(v) for v in np.unique(seg).tolist()]
    foreign = [v for v in present if v not in allowed]
    if not foreign:
        return
    reason = (
        f"label values {foreign} are not labels of the model's dataset (dataset.json: {sorted(allowed)})"
    )
    if dict(labels) == NNUNET_LABELS and set(present) <= RAW_BRATS_VALUES:
        reason += (
            "; these look like raw BraTS labels (4: enhancing tumour in BraTS 2018-2021, resection "
            "cavity in 2024), not nnU-Net's BraTS regions (1 edema, 2 non-enhancing core, 3 enhancing): "
            "convert the BraTS folder with `nnunet-holder convert-brats BRATS_FOLDER -d ID` and give its "
            "labelsTs as -l"
        )
    raise CaseError(case, label_file, reason)
