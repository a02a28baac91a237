"""Segmentations of every modality subset of one case, in one sliding-window pass.

For a modality-parallel model each tile returns the fused logits of every subset (the network's
`subset_logits`: the paper's network runs every modality once and fuses its logits per subset,
the feature-fusion network runs every encoder once and decodes the 15 fused subsets in one
batch). Gaussian tile weighting and mirroring act on each subset's logits as they act on one
prediction, so each subset equals predicting with only that subset available, and all 2^M - 1
subsets cost one pass per fold (each fold with its own weights, the folds then averaged, as the
ensemble predicts). A vanilla nnU-Net model cannot split modalities: it gets one pass per subset
with the other channels zero-filled, which is what a zero-filled missing file becomes after
nnU-Net's preprocessing. Both return label maps in the original image geometry.
"""

from __future__ import annotations

import torch
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape

from nnunet_holder.predict.predictor import HolderPredictor
from nnunet_holder.subsets import all_subsets


def subset_logits(
    predictor: HolderPredictor, data: torch.Tensor, subsets: list[tuple[int, ...]] | None = None
) -> dict[tuple[int, ...], torch.Tensor]:
    """Fused logits (C, *spatial) of every subset (or of `subsets`), keyed by their modality indices."""
    m = data.shape[0]
    subsets = all_subsets(m) if subsets is None else subsets
    if predictor.parallel_network() is not None:
        fused = predictor.predict_subset_logits(data, subsets)
        return dict(zip(subsets, fused, strict=True))
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
