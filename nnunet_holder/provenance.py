"""What produced a result, recorded beside it, and the refusal to join results of different origins.

Every per-case and per-part record that `predict` and `evaluate-subsets` write carries a setting:
the model (its folder, i.e. dataset, trainer, plans and configuration; the folds and the checkpoint
file) and the inference options that change the output (test-time mirroring, the sliding-window
step), to which each command adds its own (`evaluate-subsets`: the protocol, `--postprocess-et`,
the channels and the metric columns; `predict`: `--modalities`). Continuing a run or merging parts
compares the recorded settings with each other and with this run's, and refuses any difference,
naming it; a record without a setting (written before settings were recorded, or by another
program) is refused too, because what produced it is unknown. The model folder is recorded as
`DatasetXXX_NAME/TRAINER__PLANS__CONFIGURATION`, relative to nnUNet_results, so that parts run on
machines that mount the results in different places still merge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from nnunetv2.utilities.file_path_utilities import convert_identifier_to_trainer_plans_config

Setting = dict[str, object]
"""A JSON-ready mapping from a setting's names to its values."""


def model_setting(
    folder: Path, folds: Sequence[int | str], checkpoint: str | None, mirroring: bool, step_size: float
) -> Setting:
    """The model and inference options of a result. `checkpoint` None: the network held in memory
    (a trainer's final validation), not one read from a file."""
    trainer, plans, configuration = convert_identifier_to_trainer_plans_config(str(folder))
    return {
        "model": f"{Path(folder).parent.name}/{Path(folder).name}",
        "trainer": trainer,
        "plans": plans,
        "configuration": configuration,
        "folds": list(folds),
        "checkpoint": checkpoint,
        "mirroring": bool(mirroring),
        "step_size": float(step_size),
    }


def _as_json(setting: Mapping[str, object]) -> dict[str, object]:
    # a setting read back from JSON has lists where the one built here may have tuples
    return json.loads(json.dumps(dict(setting)))


def differences(
    found: Mapping[str, object], wanted: Mapping[str, object], found_as: str, wanted_as: str
) -> list[str]:
    """'name: value (found_as) vs value (wanted_as)' for each entry in which two settings differ."""
    a, b = _as_json(found), _as_json(wanted)
    return [
        f"{key}: {json.dumps(a.get(key))} ({found_as}) vs {json.dumps(b.get(key))} ({wanted_as})"
        for key in dict.fromkeys([*b, *a])
        if a.get(key) != b.get(key)
    ]


def refuse_mixing(
    what: str,
    found: Mapping[str, object] | None,
    wanted: Mapping[str, object],
    found_as: str,
    wanted_as: str,
    remedy: str,
) -> None:
    """SystemExit naming every difference when `found` (the record of `what`) is not `wanted`, or
    when there is no record (None)."""
    if found is None:
        raise SystemExit(
            f"{what} has no record of the model and settings that produced it (written by an earlier "
            f"version or another program). {remedy}"
        )
    if diff := differences(found, wanted, found_as, wanted_as):
        raise SystemExit(f"{what} was produced with another setting: {'; '.join(diff)}. {remedy}")
