"""The residual wrapper around every T-OSA and X3D bottleneck (spec §1.5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """``ReLU(shortcut(x) + transform(x))``.

    The shortcut is a 1x1x1 conv (stride ``(1, s, s)``) + BN (``branch1``, ``branch1_bn``) when the
    channels or the resolution change, else the identity. ``branch2`` is the transform.
    """

    def __init__(self, transform: nn.Module, dim_in: int, dim_out: int, stride: int) -> None:
        super().__init__()
        if dim_in != dim_out or stride != 1:
            self.branch1 = nn.Conv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False)
            self.branch1_bn = nn.BatchNorm3d(dim_out)
        else:
            self.branch1 = None
        self.branch2 = transform

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.branch1 is None else self.branch1_bn(self.branch1(x))
        return F.relu(shortcut + self.branch2(x))
