"""Incomplete cases: which channels a case lacks, as recorded in dataset.json, and what it may use.

nnU-Net needs a file for every channel of every training case, so an incomplete case carries a
zero-filled file for each channel it lacks, and dataset.json records the lacking channels under
`ABSENT_KEY` as {case: [channel names]} (written by `convert-brats --train-incomplete` and
`nnunet-holder fill-missing`). nnU-Net's checks ignore the extra key and its planner copies
dataset.json unchanged into the preprocessed folder, where every trainer reads it
(`trainer.dataset_json`). A case the record does not name has every channel. The trainers draw
their modality subsets inside each case's available set; the evaluation scores a case only on the
subsets it has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ABSENT_KEY = "nnunet_holder_absent"
"""dataset.json key of the record: {case id: [names (channel_names values) of the absent channels]}."""


class AbsenceRecordError(ValueError):
    """A record that names an unknown channel, a channel twice, or every channel of a case."""


def channel_index(channel_names: Mapping[str, str]) -> dict[str, int]:
    """Channel name -> channel index, from dataset.json's `channel_names`; names must be unique."""
    index: dict[str, int] = {}
    for key, name in channel_names.items():
        if name in index:
            raise AbsenceRecordError(f"channel name {name!r} is used twice in channel_names")
        index[str(name)] = int(key)
    return index


def absent_channels(dataset_json: Mapping) -> dict[str, tuple[int, ...]]:
    """{case: sorted indices of its absent channels} from the record (empty without one).

    Raises AbsenceRecordError naming the case for an unknown or repeated channel name, or for a
    case recorded without any channel.
    """
    record = dataset_json.get(ABSENT_KEY) or {}
    index = channel_index(dataset_json["channel_names"])
    out: dict[str, tuple[int, ...]] = {}
    for case, names in record.items():
        unknown = [n for n in names if n not in index]
        if unknown:
            raise AbsenceRecordError(
                f"{ABSENT_KEY} of case {case}: {unknown} are not channel names ({sorted(index)})"
            )
        channels = sorted(index[n] for n in names)
        if len(set(channels)) != len(channels):
            raise AbsenceRecordError(f"{ABSENT_KEY} of case {case}: a channel is named twice ({list(names)})")
        if len(channels) == len(index):
            raise AbsenceRecordError(f"{ABSENT_KEY} of case {case}: every channel is absent")
        if channels:
            out[str(case)] = tuple(channels)
    return out


def record_entry(absent: Sequence[int], channel_names: Mapping[str, str]) -> list[str]:
    """The record's entry of a case lacking the channels `absent`: their names, in channel order."""
    return [str(channel_names[str(c)]) for c in sorted(absent)]


def available_channels(absent: Mapping[str, Sequence[int]], case: str, num_channels: int) -> tuple[int, ...]:
    """The channels case `case` has: all but those the record names."""
    lacking = set(absent.get(case, ()))
    return tuple(c for c in range(num_channels) if c not in lacking)


def available_mask(
    absent: Mapping[str, Sequence[int]], keys: Sequence[str], num_channels: int
) -> torch.Tensor | None:
    """(B, M) 0/1 float mask of the channels each case of `keys` has; None when every case is complete,
    so that the trainers' complete-data paths (and their random streams) stay exactly as they were."""
    if not any(str(k) in absent for k in keys):
        return None
    import torch

    mask = torch.ones(len(keys), num_channels)
    for row, key in enumerate(keys):
        for c in absent.get(str(key), ()):
            mask[row, c] = 0.0
    return mask


def batch_available(
    absent: Mapping[str, Sequence[int]], batch: Mapping, num_channels: int
) -> torch.Tensor | None:
    """`available_mask` of an nnU-Net training batch, whose "keys" name its cases. A dataset without
    incomplete cases needs no keys (a batch built by hand has none); with some, a batch must have them."""
    if not absent:
        return None
    if "keys" not in batch:
        raise KeyError(f"the dataset has incomplete cases ({ABSENT_KEY}); the batch must name its 'keys'")
    return available_mask(absent, batch["keys"], num_channels)


def subsets_within(subsets: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """(B, S, M): each subset of the (S, M) mask taken inside each sample's available set (B, M).

    A subset is restricted to the modalities the sample has (S ∩ A: what segmenting with S gives on
    a case that lacks the rest); a subset with none of them becomes A itself, so no row is empty and
    the full set, the last subset of every step, becomes A, the sample's own full set. A complete
    sample keeps the step's subsets unchanged.
    """
    import torch

    inside = subsets.unsqueeze(0) * available.unsqueeze(1)
    empty = inside.sum(-1, keepdim=True) == 0
    return torch.where(empty, available.unsqueeze(1).expand_as(inside), inside)


def subsets_inside(subsets: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """(B, S) bool: whether each subset of the (S, M) mask lies inside each sample's available set."""
    return (subsets.unsqueeze(0) <= available.unsqueeze(1)).all(-1)
