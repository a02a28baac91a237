"""Modality-aware normalization: the paper's per-modality "channel encoders".

The backbone's convolutions are shared by all modalities; only the affine parameters of every
normalization layer are specific to a modality (M sets of them). The modalities are folded into
the batch, so each batch element carries the index of its modality, handed to the layer by the
network before the pass (`modality_index`). The statistics come from the plans' own
normalization class built without affine parameters; with InstanceNorm or GroupNorm they are
per sample, so folding is exact. BatchNorm statistics would mix modalities across the folded
batch; nnU-Net's plans use InstanceNorm.
"""

from __future__ import annotations

import torch
from torch import nn


class ModalityNorm(nn.Module):
    """`base_norm(num_features, affine=False)` followed by the affine of each element's modality.

    Built by dynamic-network-architectures as `norm_op(channels, **norm_op_kwargs)`, so the
    extra arguments arrive as keywords. `weight` and `bias` have shape (M, C).
    Input (N, C, *spatial) with N = B * k folded elements; `modality_index` is a LongTensor (N,).
    """

    def __init__(
        self,
        num_features: int,
        *,
        base_norm: type[nn.Module],
        num_modalities: int,
        affine: bool = True,
        **base_kwargs,
    ) -> None:
        super().__init__()
        if not affine:
            raise ValueError("ModalityNorm needs affine=True: the per-modality affine is its purpose")
        self.norm = base_norm(num_features, affine=False, **base_kwargs)
        self.num_modalities = num_modalities
        self.weight = nn.Parameter(torch.ones(num_modalities, num_features))
        self.bias = nn.Parameter(torch.zeros(num_modalities, num_features))
        self.modality_index: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.modality_index is None or self.modality_index.numel() != x.shape[0]:
            raise RuntimeError(
                "ModalityNorm was called without a modality index for this batch; run it through "
                "ModalityParallelNet, which sets the index before every pass"
            )
        y = self.norm(x)
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
        w = self.weight[self.modality_index].view(shape)
        b = self.bias[self.modality_index].view(shape)
        return y * w.to(y.dtype) + b.to(y.dtype)
