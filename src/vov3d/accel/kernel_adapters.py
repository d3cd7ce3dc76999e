"""The training kernels (``vov3d.ops.training_kernels``) applied to the modules of a VoV3D or X3D: each function
checks that the module is the kind the kernel computes (a batch norm with batch statistics, a depthwise conv
of the right shape), passes its tensors, and updates a batch norm's running statistics as
``nn.BatchNorm3d`` does in training mode. ``ChannelsLastNetwork`` calls these with the kernel library.
"""

from __future__ import annotations

import ctypes
from typing import Callable, Sequence

import torch
from torch import nn

from vov3d.ops import training_kernels
from vov3d.ops.library import MAX_TAPS


def training_batch_norm(bn: nn.Module) -> bool:
    """Whether ``bn`` normalises with batch statistics: a ``BatchNorm3d`` in training mode (or without
    running statistics), with its affine parameters (as every batch norm of VoV3D and X3D)."""
    return (
        isinstance(bn, nn.BatchNorm3d)
        and bn.affine
        and (bn.training or bn.running_mean is None)
    )


def update_running_stats(bn: nn.BatchNorm3d, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
    """What ``nn.BatchNorm3d`` does to its running statistics in training mode, from the batch ``mean`` and
    biased ``var`` of ``count`` values per channel (stored unbiased)."""
    if not (bn.training and bn.track_running_stats):
        return
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        factor = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        bn.running_mean.mul_(1 - factor).add_(mean.to(bn.running_mean.dtype), alpha=factor)
        unbiased = var * count / max(count - 1, 1)
        bn.running_var.mul_(1 - factor).add_(unbiased.to(bn.running_var.dtype), alpha=factor)


def _rows(x: torch.Tensor) -> int:
    return x.numel() // x.shape[-1]


def batch_norm_act(
    lib: ctypes.CDLL, x: torch.Tensor, bn: nn.BatchNorm3d, residual: torch.Tensor | None = None, relu: bool = False
) -> torch.Tensor:
    """``act(bn(x) + residual)`` over the last dim of a contiguous (..., C) ``x``, ``bn`` in training mode
    (``training_batch_norm``); ``act`` is ReLU when ``relu``. Differentiable in ``x``, ``residual`` and
    ``bn``'s weight and bias; updates ``bn``'s running statistics."""
    y, mean, var = training_kernels.batch_norm_act(lib, x, bn.weight, bn.bias, bn.eps, residual, relu)
    update_running_stats(bn, mean, var, _rows(x))
    return y


def temporal_conv_sums(
    lib: ctypes.CDLL, y: torch.Tensor, conv: nn.Conv3d
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``conv`` (depthwise, k x 1 x 1, zero padding k // 2, stride 1, no bias) over a contiguous (N, T, H, W, C)
    ``y``: ``training_kernels.temporal_conv_sums`` (its output and its per-clip sums)."""
    kt = conv.weight.shape[2]
    c = y.shape[-1]
    if (
        y.dim() != 5 or conv.groups != c or conv.weight.shape != (c, 1, kt, 1, 1) or conv.bias is not None
        or conv.padding != (kt // 2, 0, 0) or conv.stride != (1, 1, 1) or kt > MAX_TAPS or kt % 2 == 0
    ):
        raise ValueError(f"expected a depthwise odd k x 1 x 1 conv without bias over {c} channels, got {conv}")
    return training_kernels.temporal_conv_sums(lib, y, conv.weight)


def bn_se_act(
    lib: ctypes.CDLL,
    v: torch.Tensor,
    sums: torch.Tensor,
    sums_sq: torch.Tensor,
    shift: torch.Tensor,
    bn: nn.BatchNorm3d,
    gate: Callable[[torch.Tensor], torch.Tensor] | None,
    act: str,
) -> torch.Tensor:
    """``act(gate(bn(v)) * bn(v))`` (``training_kernels.bn_se_act``) with ``bn`` in training mode; updates its
    running statistics."""
    y, mean, var = training_kernels.bn_se_act(lib, v, sums, sums_sq, shift, bn.weight, bn.bias, bn.eps, gate, act)
    update_running_stats(bn, mean, var, sums.shape[0] * (v.numel() // sums.numel()))
    return y


def pointwise_conv(lib: ctypes.CDLL, x: torch.Tensor | Sequence[torch.Tensor], conv: nn.Conv3d) -> torch.Tensor:
    """A 1x1x1 ``conv`` (no bias, no groups) over the last dim of a contiguous (..., C_in) ``x``, or of several such
    tensors concatenated along it (never written): ``training_kernels.pointwise_conv``."""
    if conv.weight.shape[2:] != (1, 1, 1) or conv.groups != 1 or conv.bias is not None:
        raise ValueError(f"expected a 1x1x1 conv without bias or groups, got {conv}")
    return training_kernels.pointwise_conv(lib, x, conv.weight)


def bn_relu_depthwise(lib: ctypes.CDLL, x: torch.Tensor, bn: nn.BatchNorm3d, conv: nn.Conv3d) -> torch.Tensor:
    """``conv(relu(bn(x)))`` (``training_kernels.bn_relu_depthwise``) for ``bn`` in training mode and ``conv``
    depthwise 1x3x3 (padding (0, 1, 1), stride (1, s, s), no bias); updates ``bn``'s running statistics."""
    c = x.shape[-1]
    stride = conv.stride[1]
    if (
        x.dim() != 5 or conv.groups != c or conv.weight.shape != (c, 1, 1, 3, 3) or conv.bias is not None
        or conv.padding != (0, 1, 1) or conv.stride != (1, stride, stride) or conv.dilation != (1, 1, 1)
    ):
        raise ValueError(f"expected a depthwise 1x3x3 conv (padding 1, no bias) over {c} channels, got {conv}")
    y, mean, var = training_kernels.bn_relu_depthwise(lib, x, bn.weight, bn.bias, bn.eps, conv.weight, stride)
    update_running_stats(bn, mean, var, _rows(x))
    return y
