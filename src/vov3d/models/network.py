"""The network skeleton shared by VoV3D and X3D: stem ``s1``, stages ``s2``..``s5``, ``head`` (spec §1)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from vov3d.models.head import X3DHead
from vov3d.models.res_block import ResBlock


def single_pathway(x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """The clip itself, also when given as the original's one-element pathway list ``[clip]`` (spec §1.1)."""
    if isinstance(x, (list, tuple)):
        if len(x) != 1:
            raise ValueError(f"expected one pathway, got a list of {len(x)} tensors")
        x = x[0]
    return x


def res_stage(blocks: Sequence[ResBlock]) -> nn.Sequential:
    """A stage whose blocks are named ``pathway0_res{i}`` as in the original state dict."""
    return nn.Sequential(OrderedDict((f"pathway0_res{i}", b) for i, b in enumerate(blocks)))


class VideoClassifier(nn.Module):
    """Runs ``s1`` (stem), ``s2``..``s5`` (residual stages) and the head in sequence.

    ``forward`` takes a float tensor (N, 3, T, H, W), or the original's one-element pathway list
    ``[tensor]``, and returns (N, num_classes). The total spatial stride is 32; there is no temporal
    stride.
    """

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module], head: X3DHead, in_channels: int = 3) -> None:
        super().__init__()
        if len(stages) != 4:
            raise ValueError(f"expected 4 residual stages (s2..s5), got {len(stages)}")
        self.in_channels = in_channels
        self.s1 = nn.Sequential(OrderedDict(pathway0_stem=stem))
        self.s2, self.s3, self.s4, self.s5 = stages
        self.head = head

    @property
    def num_classes(self) -> int:
        return self.head.projection.out_features

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless ``x`` is a float tensor (N, 3, T, H, W) that the model can take."""
        expected = f"a float tensor of shape (N, {self.in_channels}, T, H, W)"
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"expected {expected}, got {type(x).__name__}")
        if x.dim() != 5:
            raise ValueError(f"expected {expected}, got a {x.dim()}-d tensor of shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {expected}, got {x.shape[1]} channels in shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"expected {expected}, got dtype {x.dtype} (normalise the frames first)")
        if min(x.shape[2:]) < 1:
            raise ValueError(f"expected {expected} with T, H, W >= 1, got shape {tuple(x.shape)}")
        if self.head.pool == "original":
            t, h, w = self.head.pool_size
            if x.shape[2] < t or x.shape[3] < (h - 1) * 32 + 1 or x.shape[4] < (w - 1) * 32 + 1:
                raise ValueError(
                    f"expected {expected} with T >= {t} and H, W >= {(h - 1) * 32 + 1} for the original "
                    f"head's fixed pool {t}x{h}x{w}, got shape {tuple(x.shape)}"
                )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The s5 feature map (N, C, T, H/32, W/32)."""
        return self.s5(self.s4(self.s3(self.s2(self.s1(x)))))

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        x = single_pathway(x)
        self.check_input(x)
        return self.head(self.forward_features(x))
