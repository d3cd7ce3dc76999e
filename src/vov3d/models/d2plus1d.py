"""D(2+1)D bottleneck: the layer a T-OSA module chains (spec §2.3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vov3d.models.squeeze_excitation import SqueezeExcitation


class D2Plus1D(nn.Module):
    """1x1x1 conv, then a 3D depthwise conv factorised into 1x3x3 (spatial) and 3x1x1 (temporal), then 1x1x1.

    Exact op order (spec §2.3): ``a`` = conv 1x1x1 + BN + ReLU; ``b1`` depthwise 1x3x3 (stride s) and
    ``b2`` depthwise 3x1x1 with nothing in between; ``b_bn``; SE if ``use_se``; Swish; ``c`` = conv
    1x1x1 + BN; the identity residual when ``dim_in == dim_out`` and stride 1; a final ReLU always.

    Args:
        dim_in: input channels.
        dim_inner: width of the depthwise convs (D).
        dim_out: output channels (D/2 in VoV3D).
        stride: spatial stride of the 1x3x3 conv.
        use_se: add squeeze-excitation after ``b_bn`` (the original: layers with an even index in a T-OSA).
        se_ratio: SE squeeze ratio.
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
        self.a = nn.Sequential(
            nn.Conv3d(dim_in, dim_inner, 1, bias=False),
            nn.BatchNorm3d(dim_inner),
            nn.ReLU(inplace=True),
        )
        self.b1 = nn.Conv3d(
            dim_inner, dim_inner, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
            groups=dim_inner, bias=False,
        )
        self.b2 = nn.Conv3d(dim_inner, dim_inner, (3, 1, 1), padding=(1, 0, 0), groups=dim_inner, bias=False)
        self.b_bn = nn.BatchNorm3d(dim_inner)
        self.se = SqueezeExcitation(dim_inner, se_ratio) if use_se else None
        self.c = nn.Sequential(nn.Conv3d(dim_inner, dim_out, 1, bias=False), nn.BatchNorm3d(dim_out))
        self.has_residual = dim_in == dim_out and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b_bn(self.b2(self.b1(self.a(x))))
        if self.se is not None:
            y = self.se(y)
        y = self.c(F.silu(y))  # Swish = x * sigmoid(x)
        if self.has_residual:
            y = y + x
        return F.relu(y)
