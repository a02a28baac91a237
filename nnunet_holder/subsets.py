"""Modality subsets: enumeration in the paper's order, names, and the S x M mask matrix.

Every part of the project that talks about "a subset of the available modalities" goes through
this module, so the training loss, the one-pass evaluation and the reports agree on the order
and the names. For M = 4 in the BraTS channel order (T1, T1ce, T2, FLAIR) the order is the
column order of the paper's Table II: Fl, T2, T1c, T1, T2+Fl, T1c+Fl, T1c+T2, T1+Fl, T1+T2,
T1+T1c, ~T1, ~T1c, ~T2, ~Fl, Full.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING

from nnunet_holder.brats import SHORT_NAMES

if TYPE_CHECKING:  # torch only where a tensor is made: the CLI's refusals and the tables import this module
    import torch

def all_subsets(num_modalities: int) -> list[tuple[int, ...]]:
    """All 2^M - 1 non-empty subsets, by size, then in the paper's order within a size.

    Within a size the paper sorts by descending modality indices: singles Fl, T2, T1c, T1;
    pairs T2+Fl, T1c+Fl, T1c+T2, T1+Fl, T1+T2, T1+T1c; triples ~T1, ~T1c, ~T2, ~Fl.
    """
    if num_modalities < 1:
        raise ValueError(f"num_modalities must be >= 1, got {num_modalities}")
    out: list[tuple[int, ...]] = []
    for size in range(1, num_modalities + 1):
        combos = combinations(range(num_modalities), size)
        out.extend(sorted(combos, key=lambda c: tuple(-i for i in c)))
    return out


def subset_name(subset: tuple[int, ...], names: tuple[str, ...] | list[str]) -> str:
    """Paper-style column name: 'Fl', 'T1c+T2', '~T1', 'Full'."""
    m = len(names)
    if len(subset) == m:
        return "Full"
    if len(subset) == m - 1 and m > 2:
        missing = next(i for i in range(m) if i not in subset)
        return "~" + names[missing]
    return "+".join(names[i] for i in subset)


def modality_names(channel_names: dict[str, str]) -> tuple[str, ...]:
    """The names of a dataset's channels, in channel order, from dataset.json's `channel_names`.

    BraTS channels get the paper's short names (T1, T1c, T2, Fl) whatever their order, others
    keep dataset.json's name. The one source for the training log, the tables and the figures.
    """
    names = [str(channel_names[str(i)]) for i in range(len(channel_names))]
    return tuple(SHORT_NAMES.get(n.lower(), n) for n in names)


def subset_mask(subsets: list[tuple[int, ...]], num_modalities: int) -> torch.Tensor:
    """(S, M) float mask, 1 where the modality belongs to the subset."""
    import torch

    mask = torch.zeros(len(subsets), num_modalities)
    for s, subset in enumerate(subsets):
        if not subset:
            raise ValueError("empty modality subset")
        mask[s, list(subset)] = 1.0
    return mask


def fusion_weights(mask: torch.Tensor, log_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weights of the subsets' fusions, normalised over each subset's modalities.

    `mask` is (S, M), or (B, S, M) for subsets that differ per sample (incomplete cases); the
    weights get the same leading axes. Without `log_weights`: the row-normalised mask, (S, M), so
    fused_S = sum_m w[s, m] * h_m is the mean over S. With per-(modality, class) log-weights β of
    shape (M, C): (S, M, C) weights w[s, m, c] = mask[s, m] e^β[m, c] / sum_m' mask[s, m'] e^β[m', c],
    a weighted mean per class.
    """
    import torch

    if log_weights is None:
        return mask / mask.sum(dim=-1, keepdim=True).clamp_min(1.0)
    if log_weights.dim() != 2 or log_weights.shape[0] != mask.shape[-1]:
        raise ValueError(f"log_weights must be ({mask.shape[-1]}, C), got {tuple(log_weights.shape)}")
    # shifting β per class leaves the weights unchanged and keeps exp() finite
    scores = torch.exp(log_weights - log_weights.max(dim=0, keepdim=True).values)
    weighted = mask.unsqueeze(-1).to(scores.dtype) * scores.unsqueeze(0)
    return weighted / weighted.sum(dim=-2, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
