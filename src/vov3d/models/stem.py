"""The X3D stem, shared by VoV3D and X3D (spec §1.4)."""

from __future__ import annotations

import torch
from torch import nn


class X3DStem(nn.Module):
    """Spatial 1x3x3 conv (stride 2), depthwise temporal conv, BN, ReLU. No pooling, no temporal stride.

    Registered under ``s1.pathway0_stem`` with the original's child names ``conv_xy``, ``conv``, ``bn``.
    """


    def __init__(self, dim_out: int, temporal_kernel: int = 5, dim_in: int = 3) -> None:
        super().__init__()
        self.conv_xy = nn.Conv3d(dim_in, dim_out, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.conv = nn.Conv3d(
            dim_out,
            dim_out,
            (temporal_kernel, 1, 1),
            padding=(temporal_kernel // 2, 0, 0),
            groups=dim_out,
            bias=False,
        )
        self.bn = nn.BatchNorm3d(dim_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(self.conv_xy(x))))
