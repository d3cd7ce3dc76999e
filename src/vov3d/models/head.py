"""The X3D classification head, used by VoV3D and X3D (spec §4)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

HeadPool = Literal["global", "original"]


def original_pool_size(num_frames: int, train_crop_size: int, total_stride: int = 32) -> tuple[int, int, int]:
    """The original head's fixed pool: ``[NUM_FRAMES, ceil(crop/32), ceil(crop/32)]`` (spec §4)."""
    side = math.ceil(train_crop_size / total_stride)
    return (num_frames, side, side)


class X3DHead(nn.Module):
    """conv_5 (1x1x1) + BN + ReLU, average pool, lin_5 (1x1x1) + ReLU, dropout, linear projection.

    Two pooling modes:

    * ``"global"`` (default): global average pooling. Any T, H, W; the output is logits (N, classes)
      in train and eval mode.
    * ``"original"``: the original's fixed ``AvgPool3d(pool_size, stride=1)`` (spec §4, §11.5). A
      larger input gives several positions: in eval mode each position's softmax is taken and the
      probabilities are averaged, exactly as the original, so the output is **probabilities**; in
      train mode the logits of the positions are averaged (the original flattened them into
      N x positions*classes, which no loss accepts). The network checks that the input covers the pool.

    ``num_frames`` and ``train_crop_size`` size the original pool and are ignored by the global one.
    Module names (``conv_5``, ``conv_5_bn``, ``lin_5``, ``projection``) are the original's.
    """


    def __init__(
        self,
        dim_in: int,
        dim_inner: int,
        num_classes: int,
        dim_out: int = 2048,
        dropout: float = 0.5,
        pool: HeadPool = "global",
        num_frames: int = 16,
        train_crop_size: int = 224,
    ) -> None:
        super().__init__()
        if pool not in ("global", "original"):
            raise ValueError(f"head pool must be 'global' or 'original', got {pool!r}")
        self.pool = pool
        self.pool_size = original_pool_size(num_frames, train_crop_size) if pool == "original" else None
        self.conv_5 = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.conv_5_bn = nn.BatchNorm3d(dim_inner)
        self.lin_5 = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.projection = nn.Linear(dim_out, num_classes, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv_5_bn(self.conv_5(x)))
        if self.pool == "global":
            x = F.adaptive_avg_pool3d(x, 1)
        else:
            x = F.avg_pool3d(x, self.pool_size, stride=1)
        x = F.relu(self.lin_5(x))
        x = x.permute(0, 2, 3, 4, 1)  # (N, T', H', W', C)
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.projection(x)
        if self.pool == "original" and not self.training:
            return x.softmax(dim=4).mean(dim=(1, 2, 3))
        return x.mean(dim=(1, 2, 3))
