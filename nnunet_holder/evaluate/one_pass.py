"""Segmentations of every modality subset of one case, in one sliding-window pass.

For a modality-parallel model the predictor returns the aggregated logits of every modality
separately; Gaussian tile weighting and mirroring are linear in the logits, so the network's
fusion (a mean, or a per-class weighted mean) over a subset S of these equals predicting with
only S available, and all 2^M - 1 subsets cost one pass. A vanilla nnU-Net model cannot split
modalities: it gets one pass per subset with the other channels zero-filled, which is what a
zero-filled missing file becomes after nnU-Net's preprocessing. Both return label maps in the
original image geometry.
"""

from __future__ import annotations

import torch
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape

from nnunet_holder.predict.predictor import HolderPredictor
from nnunet_holder.subsets import all_subsets, subset_mask

BRATS_SHORT_NAMES = {
    "t1": "T1",
    "t1ce": "T1c",
    "t1c": "T1c",
    "t2": "T2",
    "flair": "Fl",
    "t1n": "T1",
    "t2w": "T2",
    "t2f": "Fl",
}


def modality_short_names(channel_names: dict[str, str]) -> tuple[str, ...]:
    """Paper-style names (T1, T1c, T2, Fl) where the channels are BraTS's, else dataset.json's."""
    names = [channel_names[str(i)] for i in range(len(channel_names))]
    return tuple(BRATS_SHORT_NAMES.get(n.lower(), n) for n in names)


def subset_logits(predictor: HolderPredictor, data: torch.Tensor) -> dict[tuple[int, ...], torch.Tensor]:
    """Fused logits (C, *spatial) of every subset, keyed by the subset's modality indices."""
    m = data.shape[0]
    subsets = all_subsets(m)
    net = predictor.parallel_network()
    if net is not None:
        per_modality = predictor.predict_per_modality_logits(data)
        with torch.no_grad():
            weights = net.fusion(subset_mask(subsets, m)).to(per_modality)
        return {
            s: torch.einsum("mc,mc...->c...", w, per_modality) for s, w in zip(subsets, weights, strict=True)
        }
    out = {}
    for s in subsets:
        masked = data.clone()
        masked[[i for i in range(m) if i not in s]] = 0
        out[s] = predictor.predict_logits_from_preprocessed_data(masked)
    return out


def to_segmentation(predictor: HolderPredictor, logits: torch.Tensor, properties: dict):
    """Logits in the preprocessed frame -> label map in the original geometry (nnU-Net's export)."""
    return convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, predictor.plans_manager, predictor.configuration_manager, predictor.label_manager, properties
    )
