"""X3D baselines as the original repository builds them (spec §3), and the registered sizes."""

from __future__ import annotations

import math
from typing import Sequence

from vov3d.models.head import HeadPool, X3DHead
from vov3d.models.weight_init import init_weights
from vov3d.models.network import VideoClassifier, res_stage
from vov3d.models.registry import register_model
from vov3d.models.res_block import ResBlock
from vov3d.models.squeeze_excitation import round_width
from vov3d.models.stem import X3DStem
from vov3d.models.x3d_bottleneck import X3DBottleneck

BASE_DEPTHS = (1, 2, 5, 3)


def build_x3d(
    num_classes: int = 400,
    width_factor: float = 2.0,
    depth_factor: float = 2.2,
    bottleneck_factor: float = 2.25,
    dim_c1: int = 12,
    base_depths: Sequence[int] = BASE_DEPTHS,
    dropout: float = 0.5,
    head_dim: int = 2048,
    head_pool: HeadPool = "global",
    num_frames: int = 16,
    train_crop_size: int = 224,
    stem_temporal_kernel: int = 5,
    se_ratio: float = 1.0 / 16,
    fc_init_std: float = 0.01,
    zero_init_final_bn: bool = True,
) -> VideoClassifier:
    """Build an X3D network.

    Args:
        width_factor: X3D.WIDTH_FACTOR; stage widths ``round_width(12 * 2**j, width_factor)``.
        depth_factor: X3D.DEPTH_FACTOR; blocks per stage ``ceil(depth_factor * base_depths[j])``.
        bottleneck_factor: X3D.BOTTLENECK_FACTOR; depthwise width ``int(factor * stage width)``.
        dim_c1: X3D.DIM_C1, the base width of res2.
        Other arguments as in ``build_vov3d``.
    """
    stem_dim = round_width(dim_c1, width_factor)
    stages = []
    dim_in, base, dim_inner = stem_dim, dim_c1, 0
    for j, depth in enumerate(base_depths):
        if j > 0:
            base = round_width(base, 2.0)
        dim_out = round_width(base, width_factor)
        dim_inner = int(bottleneck_factor * dim_out)
        stage_blocks = []
        for i in range(int(math.ceil(depth_factor * depth))):
            stride = 2 if i == 0 else 1
            transform = X3DBottleneck(dim_in, dim_inner, dim_out, stride, use_se=(i + 1) % 2 != 0, se_ratio=se_ratio)
            stage_blocks.append(ResBlock(transform, dim_in, dim_out, stride))
            dim_in = dim_out
        stages.append(res_stage(stage_blocks))
    head = X3DHead(
        dim_in=dim_in,
        dim_inner=dim_inner,
        num_classes=num_classes,
        dim_out=head_dim,
        dropout=dropout,
        pool=head_pool,
        num_frames=num_frames,
        train_crop_size=train_crop_size,
    )
    model = VideoClassifier(X3DStem(stem_dim, stem_temporal_kernel), stages, head)
    init_weights(model, fc_init_std, zero_init_final_bn)
    return model


@register_model
def x3d_m(num_classes: int = 400, **kwargs) -> VideoClassifier:
    """X3D-M: width 2.0, depth 2.2 (blocks 3,5,11,7), bottleneck 2.25."""
    return build_x3d(num_classes, width_factor=2.0, depth_factor=2.2, bottleneck_factor=2.25, **kwargs)


@register_model
def x3d_l(num_classes: int = 400, **kwargs) -> VideoClassifier:
    """X3D-L: width 2.0, depth 5.0 (blocks 5,10,25,15), bottleneck 2.25."""
    return build_x3d(num_classes, width_factor=2.0, depth_factor=5.0, bottleneck_factor=2.25, **kwargs)
