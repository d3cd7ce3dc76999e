"""Parameters and GFLOPs per view, counted the way the original reports them (spec §6).

The original counts, with fvcore on one clip at batch 1 in eval mode, the multiply-adds of the
convolutions and linear layers (1 multiply-add = 1 FLOP); BN, activations and pooling are not
counted. We count with ``torch.utils.flop_counter.FlopCounterMode``, which reports 2 FLOPs per
multiply-add for exactly those ops (convolution, mm/addmm/bmm), and halve its total.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vov3d.models.registry import create_model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as BN running statistics are not counted)."""
    return sum(p.numel() for p in model.parameters())


def count_gmacs(model: nn.Module, frames: int = 16, size: int = 224) -> float:
    """Multiply-adds (in 1e9) of conv and linear layers for one clip (1, 3, frames, size, size), eval mode.

    Works on any device, ``meta`` included (then nothing is computed).
    """
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    x = torch.zeros(1, 3, frames, size, size, dtype=param.dtype, device=param.device)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9


def model_complexity(
    name: str,
    num_classes: int = 400,
    frames: int = 16,
    size: int = 224,
    train_crop_size: int | None = None,
) -> dict[str, Any]:
    """Params and GFLOPs (multiply-adds) per view of a registered model.

    With ``train_crop_size`` the model is built with the original head (fixed pool from that crop,
    spec §4), as the original's test-time logs count it; by default the pool is global, which gives
    the same count whenever ``size`` is the training crop.
    """
    kwargs: dict[str, Any] = {}
    if train_crop_size is not None:
        kwargs = dict(head_pool="original", num_frames=frames, train_crop_size=train_crop_size)
    with torch.device("meta"):  # shapes only: nothing is allocated or computed
        model = create_model(name, num_classes=num_classes, **kwargs)
    return {
        "model": name,
        "num_classes": num_classes,
        "frames": frames,
        "size": size,
        "params": count_parameters(model),
        "gflops": count_gmacs(model, frames, size),
    }


def format_complexity(stats: dict[str, Any]) -> str:
    """One human-readable line, e.g. ``vov3d_m (400 classes) 16x224x224: 3.80M params, 4.42 GFLOPs``."""
    return (
        f"{stats['model']} ({stats['num_classes']} classes) {stats['frames']}x{stats['size']}x{stats['size']}: "
        f"{stats['params'] / 1e6:.2f}M params, {stats['gflops']:.2f} GFLOPs (multiply-adds) per view"
    )
