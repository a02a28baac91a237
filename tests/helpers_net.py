"""Small backbone configurations (nnU-Net plans style) shared by the network and trainer tests."""

from __future__ import annotations

import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet
from torch import nn


def plain_kwargs(dim: int = 3) -> dict:
    conv = nn.Conv3d if dim == 3 else nn.Conv2d
    norm = nn.InstanceNorm3d if dim == 3 else nn.InstanceNorm2d
    return {
        "n_stages": 3,
        "features_per_stage": [8, 16, 32],
        "conv_op": conv,
        "kernel_sizes": [[3] * dim] * 3,
        "strides": [[1] * dim, [2] * dim, [2] * dim],
        "n_conv_per_stage": [2, 2, 2],
        "n_conv_per_stage_decoder": [1, 1],
        "conv_bias": True,
        "norm_op": norm,
        "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": nn.LeakyReLU,
        "nonlin_kwargs": {"inplace": True},
    }


def resenc_kwargs() -> dict:
    kw = plain_kwargs(3)
    kw["n_blocks_per_stage"] = kw.pop("n_conv_per_stage")
    return kw


BACKBONES = {"plain": (PlainConvUNet, plain_kwargs), "resenc": (ResidualEncoderUNet, resenc_kwargs)}


def randomise_norms(net: nn.Module, seed: int = 0) -> None:
    """Give every modality's affine distinct values (they start identical at 1 / 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 2 and "norm" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if name.endswith("weight") else 0.0))


def assert_explicit_outputs_agree(net: nn.Module, subsets: list[tuple[int, ...]], num_classes: int) -> None:
    """`training_output`, `subset_logits` and `predict` of a network give the same logits per subset."""
    from nnunet_holder.subsets import subset_mask

    mask = subset_mask(subsets, net.num_modalities)
    x = torch.randn(2, net.num_modalities, 16, 16, 16)
    with torch.no_grad():
        train = net(x, mask)["logits"][0]
        one_pass = net.subset_logits(x, mask)
        net.decoder.deep_supervision = False
        for s, subset in enumerate(subsets):
            pred = net.predict(x, torch.tensor(subset))
            assert pred.shape == (2, num_classes, 16, 16, 16)
            assert (pred - one_pass[:, s]).abs().max() < 1e-4
            assert (pred - train[:, s]).abs().max() < 1e-4
