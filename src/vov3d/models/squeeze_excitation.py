"""Squeeze-and-excitation block and the channel rounding rule it shares with X3D (spec §1.3)."""

from __future__ import annotations

import torch
from torch import nn


def round_width(width: float, multiplier: float = 1.0, min_width: int = 8, divisor: int = 8) -> int:
    """Round ``width * multiplier`` to the nearest multiple of ``divisor`` (at least ``min_width``).

    If rounding lost more than 10% of the width, one ``divisor`` is added back (spec §1.3, §3.1).
    """
    w = width * multiplier
    out = max(min_width, int(w + divisor / 2) // divisor * divisor)
    if out < 0.9 * w:
        out += divisor
    return int(out)


class SqueezeExcitation(nn.Module):
    """SE gate: global average pool, 1x1x1 conv + ReLU, 1x1x1 conv + sigmoid, scale the input.

    Both convs have a bias; the squeeze width is ``round_width(dim, ratio)`` (spec §1.3). Module
    names ``fc1``/``fc2`` are the original's, so checkpoints load as they are.
    """

    def __init__(self, dim: int, ratio: float = 1.0 / 16) -> None:
        super().__init__()
        dim_se = round_width(dim, ratio)
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.fc1 = nn.Conv3d(dim, dim_se, 1, bias=True)
        self.fc1_act = nn.ReLU()
        self.fc2 = nn.Conv3d(dim_se, dim, 1, bias=True)
        self.fc2_sig = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2_sig(self.fc2(self.fc1_act(self.fc1(self.avg_pool(x)))))
        return x * gate
