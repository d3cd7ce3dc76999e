"""The X3D bottleneck transform, for the X3D-M/L baselines (spec §3.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vov3d.models.squeeze_excitation import SqueezeExcitation


class X3DBottleneck(nn.Module):
    """1x1x1 conv + BN + ReLU, channelwise 3x3x3 conv (stride s) + BN, SE (optional), Swish, 1x1x1 conv + BN.

    ``c_bn`` is the block's final BN, zero-initialised (spec §5). The original puts SE on blocks
    with an even index within the stage (spec §3.2).
    """


    def __init__(
        self,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        stride: int = 1,
        use_se: bool = True,
        se_ratio: float = 1.0 / 16,
    ) -> None:
        super().__init__()
        self.a = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.a_bn = nn.BatchNorm3d(dim_inner)
        self.a_relu = nn.ReLU(inplace=True)
        self.b = nn.Conv3d(
            dim_inner, dim_inner, 3, stride=(1, stride, stride), padding=1, groups=dim_inner, bias=False
        )
        self.b_bn = nn.BatchNorm3d(dim_inner)
        self.se = SqueezeExcitation(dim_inner, se_ratio) if use_se else None
        self.c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = nn.BatchNorm3d(dim_out)
        self.c_bn.transform_final_bn = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b_bn(self.b(self.a_relu(self.a_bn(self.a(x)))))
        if self.se is not None:
            y = self.se(y)
        return self.c_bn(self.c(F.silu(y)))
