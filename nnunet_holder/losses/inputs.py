"""How the losses take their inputs: float32 with autocast switched off, hard targets as masks.

Every loss of this package computes in float32 (log space where it matters) even when the network
runs under fp16/bf16 autocast, and accepts nnU-Net's two target layouts: a one-hot / region mask
(N, C, *spatial) and an integer label map (N, 1, *spatial). The helpers here do both, for logits
with the class axis anywhere (the composite loss puts a subset axis in front of it).
"""

from __future__ import annotations

import contextlib

import torch


def autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    """A context that disables autocast on `device` (a no-op where the device has no autocast)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """float16 / bfloat16 / integer tensors as float32; float32 and float64 unchanged."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def hard_target(target: torch.Tensor, num_classes: int, class_dim: int, use_sigmoid: bool) -> torch.Tensor:
    """Boolean one-hot mask with `num_classes` entries along `class_dim`.

    Args:
        target: region / one-hot mask with `num_classes` entries along `class_dim` (bool, or
            numbers where > 0.5 counts as set), or, for softmax (`use_sigmoid=False`), a label map
            with a single entry along `class_dim` holding class indices.
        num_classes: C, the number of logit channels.
        class_dim: the channel axis of the logits; `target` has the same number of dimensions.
        use_sigmoid: region dataset (independent sigmoid channels) or label dataset (softmax).

    Returns:
        bool tensor, the shape of `target` with C along `class_dim` (other axes of size 1 stay 1
        and broadcast against the logits).
    """
    channels = target.shape[class_dim]
    if channels == num_classes and (use_sigmoid or num_classes > 1):
        return target if target.dtype == torch.bool else target > 0.5
    if use_sigmoid:
        raise ValueError(
            f"region (sigmoid) targets must be one-hot with {num_classes} channels on axis {class_dim}, "
            f"got shape {tuple(target.shape)}"
        )
    if channels != 1:
        raise ValueError(
            f"label (softmax) targets must be a label map (1 channel) or one-hot ({num_classes} channels) "
            f"on axis {class_dim}, got shape {tuple(target.shape)}"
        )
    shape = [1] * target.ndim
    shape[class_dim] = num_classes
    classes = torch.arange(num_classes, device=target.device).view(shape)
    return target.long() == classes
