"""Temporal one-shot aggregation (T-OSA), the transform of every VoV3D block (spec §2.2)."""

from __future__ import annotations

import torch
from torch import nn

from vov3d.models.d2plus1d import D2Plus1D


class TemporalOSA(nn.Module):
    """A chain of D(2+1)D layers whose outputs are concatenated once and aggregated by a 1x1x1 conv + BN.

    Layer j sees the output of layer j-1, so layer outputs span growing temporal receptive fields. At
    stride 1 the block input joins the concatenation first (``[x, y0, .., y_{n-1}]``); at stride 2 it
    cannot (other spatial size), so only the layer outputs are concatenated. No activation after
    ``c_bn``; ``c_bn`` is the block's final BN, zero-initialised (spec §5). SE sits on layers with an
    even index inside the T-OSA (spec §2.3, step 7).

    Args:
        dim_in: block input channels.
        dim_inner: depthwise width D of each D(2+1)D layer; each layer outputs ``D // 2`` channels.
        dim_out: block output channels.
        stride: spatial stride (applied by layer 0).
        num_layers: D(2+1)D layers in the chain (NUM_CONV).
        se_ratio: SE squeeze ratio.
    """


    def __init__(
        self,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        stride: int = 1,
        num_layers: int = 5,
        se_ratio: float = 1.0 / 16,
    ) -> None:
        super().__init__()
        layer_out = dim_inner // 2
        self.layers = nn.ModuleList(
            D2Plus1D(
                dim_in if j == 0 else layer_out,
                dim_inner,
                layer_out,
                stride=stride if j == 0 else 1,
                use_se=(j + 1) % 2 != 0,
                se_ratio=se_ratio,
            )
            for j in range(num_layers)
        )
        self.include_input = stride == 1
        dim_cat = (dim_in if self.include_input else 0) + num_layers * layer_out
        self.c = nn.Conv3d(dim_cat, dim_out, 1, bias=False)
        self.c_bn = nn.BatchNorm3d(dim_out)
        self.c_bn.transform_final_bn = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x] if self.include_input else []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return self.c_bn(self.c(torch.cat(outputs, dim=1)))
