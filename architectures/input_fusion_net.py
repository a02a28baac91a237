"""The input-fusion network: the plans' own U-Net on all channels, a missing modality zero-filled.

The plans' network (PlainConvUNet or ResidualEncoderUNet with M input channels and the plans'
own norms, features scaled by `width`) sees every available modality from its first
convolution, as nnU-Net with random modality dropout and DeMoSeg's input-level fusion do; a
missing modality is a channel of zeros, which is what a zero-filled file becomes after nnU-Net's
z-score preprocessing. For the paper's loss, each subset of a training step is the same batch
with the other channels zeroed, and all subsets run in one batch (B, M, ...) -> (B*S, M, ...);
the MI regressors read each subset's encoder features at the deepest stages (d_S) against the
full set's (d_f). Prediction costs one pass whatever the number k of available modalities.
Unlike the two modality-parallel networks, this one has no per-modality norms: a missing
modality does reach the network, as zeros, exactly as in the modality-dropout baseline. With
`availability_channels` the input also carries the subset's 0/1 mask as M constant channels, so
the first convolution can tell an absent modality from a dark region of a present one. With
`subset_norms` every normalization of the backbone has one affine per subset (2^M - 1 of them, a
`ModalityNorm` whose groups are the subsets): the convolutions stay shared, and each subset gets
its own scale and shift of every feature (two parameters per feature of every norm and subset).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from nnunet_holder.architectures.modality_net import ModalityNetwork
from torch import nn


class InputFusionNet(ModalityNetwork):
    """The plans' U-Net on the M channels with absent modalities zeroed, and MI regressors.

    Args: those of `ModalityNetwork` (the plans' norms are kept; `width` 1.0 is nnU-Net's network),
        `availability_channels`: also feed each input's availability mask, (M, *spatial)
        constant maps, so the backbone has 2M input channels, and `subset_norms`: the plans' norms
        without affine, followed by the affine of the input's subset (subset code sum_m 2^m - 1).
    """

    uses_modality_norms = False

    def __init__(
        self,
        *args,
        deep_supervision: bool = True,
        availability_channels: bool = False,
        subset_norms: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.availability_channels = availability_channels
        self.subset_norms = subset_norms
        plain = dict(self.scaled_kwargs)
        if subset_norms:
            groups = 2**self.num_modalities - 1
            plain["norm_op_kwargs"] = {**plain["norm_op_kwargs"], "num_modalities": groups}
        else:
            plain.update(norm_op=self.base_norm, norm_op_kwargs=self.base_norm_kwargs)
        self.backbone = self.backbone_class(
            input_channels=self.num_modalities * (2 if availability_channels else 1),
            num_classes=self.num_classes, deep_supervision=deep_supervision, **plain,
        )
        self.backbone.apply(self.backbone.initialize)
        self.mi_regressors = self.make_mi_regressors(self.backbone.encoder)

    @property
    def decoder(self) -> nn.Module:
        """The backbone's decoder; nnU-Net switches deep supervision through `network.decoder`."""
        return self.backbone.decoder

    def image_passes(self, available: int, subsets: int | None = None) -> int:
        """One pass per image, or one per subset: the channels run together."""
        return 1 if subsets is None else subsets

    def _run(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Skips (list over stages of (B, S, F, *sp)) and outputs (list over scales of (B, S, C, *sp))
        of x (B, M, ...) with each row of the (S, M) (or per-sample (B, S, M)) mask applied, the S
        inputs in one batch."""
        b, s = x.shape[0], mask.shape[-2]
        per_sample = -1 if mask.dim() == 3 else 1
        keep = mask.to(x.dtype).view(per_sample, s, self.num_modalities, *[1] * (x.ndim - 2))
        inputs = x.unsqueeze(1) * keep
        if self.availability_channels:
            inputs = torch.cat([inputs, keep.expand_as(inputs)], dim=2)
        groups = nullcontext()
        if self.subset_norms:
            bits = 2 ** torch.arange(self.num_modalities, device=x.device)
            codes = (mask.view(per_sample, s, self.num_modalities).long() * bits).sum(-1) - 1
            groups = self.folded_index(codes.expand(b, s).flatten())
        with groups:
            skips = self.backbone.encoder(inputs.flatten(0, 1))
            out = self.backbone.decoder(skips)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [f.view(b, s, *f.shape[1:]) for f in skips], [o.view(b, s, *o.shape[1:]) for o in outs]

    def predict(self, x: torch.Tensor, available: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, C, *spatial) with the channels outside `available` zeroed: one pass."""
        available = self.available_or_present(x, available)
        mask = torch.zeros(1, self.num_modalities, device=x.device).index_fill_(1, available, 1.0)
        return self._run(x, mask)[1][0][:, 0]

    def subset_logits(self, x: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
        """Logits (B, S, C, *spatial) of every subset, the S masked inputs in one batch."""
        self.check_channels(x)
        return self._run(x, self.check_subsets(subsets, x.device))[1][0]

    def training_output(self, x: torch.Tensor, subsets: torch.Tensor) -> dict:
        self.check_channels(x)
        subsets = self.check_subsets(subsets, x.device)
        s = subsets.shape[-2]
        if subsets.dim() == 3:  # per sample: the teacher is each sample's available set, its union
            union = subsets.amax(dim=1, keepdim=True)
            last_is_union = bool((subsets[:, -1:] == union).all())
            run, teacher = (subsets, s - 1) if last_is_union else (torch.cat([subsets, union], 1), s)
        elif (full := (subsets.sum(1) == self.num_modalities).nonzero().flatten()).numel():
            run, teacher = subsets, int(full[0])
        else:  # the MI teacher is the full set's features: run it too, as one more input
            run, teacher = torch.cat([subsets, subsets.new_ones(1, self.num_modalities)]), s
        skips, outs = self._run(x, run)
        mi_pred, mi_target, mi_var = [], [], []
        for regressor, feat in zip(self.mi_regressors, skips[-len(self.mi_regressors) :], strict=True):
            mu = regressor(feat[:, :s].flatten(0, 1))
            mi_pred.append(mu.view(feat.shape[0], s, *mu.shape[1:]))
            mi_target.append(feat[:, teacher])
            mi_var.append(regressor.variance())
        return {"logits": [o[:, :s] for o in outs], "subset_mask": subsets, "mi_pred": mi_pred,
                "mi_target": mi_target, "mi_var": mi_var}
