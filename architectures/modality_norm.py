"""Modality-aware normalization: the paper's per-modality "channel encoders".

The backbone's convolutions are shared by all modalities; only the affine parameters of every
normalization layer are specific to a modality (M sets of them). The modalities are folded into
the batch, so each batch element belongs to one modality. dynamic-network-architectures calls a
norm with the feature map alone, so the modality of each element cannot travel as an argument:
every norm of one network reads it from one shared `FoldedModalities` record, which only the
network's own forward writes, once per pass. The statistics come from the plans' own
normalization class built without affine parameters; with InstanceNorm or GroupNorm they are
per sample, so folding is exact. BatchNorm would mix the modalities' statistics across the folded
batch and is refused.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class FoldedModalities:
    """The modality of each element of the folded batch, shared by every norm of one network.

    `index` is a LongTensor (N,) with N = B * k for k modalities folded into a batch of B,
    written by the network at the start of each pass.
    """

    def __init__(self) -> None:
        self.index: torch.Tensor | None = None


class ModalityNorm(nn.Module):
    """`base_norm(num_features, affine=False)` followed by the affine of each element's modality.

    Built by dynamic-network-architectures as `norm_op(channels, **norm_op_kwargs)`, so the
    extra arguments arrive as keywords. `weight` and `bias` have shape (M, C).
    Input (N, C, *spatial) with N = B * k folded elements, their modalities in `folded.index`.
    """

    def __init__(
        self,
        num_features: int,
        *,
        base_norm: type[nn.Module],
        num_modalities: int,
        folded: FoldedModalities,
        affine: bool = True,
        **base_kwargs,
    ) -> None:
        super().__init__()
        if not affine:
            raise ValueError("ModalityNorm needs affine=True: the per-modality affine is its purpose")
        if issubclass(base_norm, _BatchNorm):
            raise ValueError(
                f"{base_norm.__name__} is not supported: batch statistics would mix the modalities "
                "folded into one batch. Use plans with InstanceNorm (nnU-Net's default planners)."
            )
        self.norm = base_norm(num_features, affine=False, **base_kwargs)
        self.num_modalities = num_modalities
        self.weight = nn.Parameter(torch.ones(num_modalities, num_features))
        self.bias = nn.Parameter(torch.zeros(num_modalities, num_features))
        self.folded = folded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = self.folded.index
        if index is None or index.shape[0] != x.shape[0]:
            raise RuntimeError(
                "ModalityNorm was called without the modalities of this batch; run it through "
                "ModalityParallelNet, whose forward records them before every pass"
            )
        y = self.norm(x)
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
        w = self.weight[index].view(shape)
        b = self.bias[index].view(shape)
        return y * w.to(y.dtype) + b.to(y.dtype)
