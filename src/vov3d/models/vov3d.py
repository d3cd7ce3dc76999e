"""VoV3D: stages of T-OSA blocks built from D(2+1)D layers (spec §2), and the registered sizes."""

from __future__ import annotations

from typing import Sequence

from vov3d.models.head import HeadPool, X3DHead
from vov3d.models.weight_init import init_weights
from vov3d.models.network import VideoClassifier, res_stage
from vov3d.models.registry import register_model
from vov3d.models.res_block import ResBlock
from vov3d.models.stem import X3DStem
from vov3d.models.temporal_osa import TemporalOSA

INNER_MULTIPLIERS = (1, 2, 4, 8)
OUT_MULTIPLIERS = (0.5, 1, 2, 4)


def build_vov3d(
    num_classes: int = 400,
    inner_channels: int = 40,
    blocks: Sequence[int] = (1, 2, 3, 2),
    layers_per_block: int = 5,
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
    """Build a VoV3D network.

    Args:
        num_classes: classifier outputs.
        inner_channels: K (VOV3D.INNER_CH). Stem width K/2; stage j has depthwise width
            ``K * (1, 2, 4, 8)[j]`` and output ``K * (0.5, 1, 2, 4)[j]`` (spec §2.1).
        blocks: T-OSA blocks per stage s2..s5; block 0 of each stage has spatial stride 2.
        layers_per_block: D(2+1)D layers per T-OSA (VOV3D.NUM_CONV).
        dropout: dropout before the projection.
        head_dim: width of ``head.lin_5`` (X3D.DIM_C5).
        head_pool: "global" (any input size) or "original" (fixed pool, spec §4).
        num_frames, train_crop_size: only used by ``head_pool="original"`` to size its pool.
        stem_temporal_kernel: temporal kernel of the stem's depthwise conv.
        se_ratio: squeeze-excitation ratio.
        fc_init_std, zero_init_final_bn: initialisation (spec §5).
    """
    k = inner_channels
    stem_dim = int(k / 2)
    stages = []
    dim_in = stem_dim
    for j, num_blocks in enumerate(blocks):
        dim_inner, dim_out = int(k * INNER_MULTIPLIERS[j]), int(k * OUT_MULTIPLIERS[j])
        stage_blocks = []
        for i in range(num_blocks):
            stride = 2 if i == 0 else 1
            tosa = TemporalOSA(dim_in, dim_inner, dim_out, stride, layers_per_block, se_ratio)
            stage_blocks.append(ResBlock(tosa, dim_in, dim_out, stride))
            dim_in = dim_out
        stages.append(res_stage(stage_blocks))
    head = X3DHead(
        dim_in=dim_in,
        dim_inner=int(k * INNER_MULTIPLIERS[-1]),
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
def vov3d_m(num_classes: int = 400, **kwargs) -> VideoClassifier:
    """VoV3D-M as in the paper's results table (Dec 2020): K 48, blocks (1,1,2,2), 4 layers per T-OSA."""
    return build_vov3d(num_classes, inner_channels=48, blocks=(1, 1, 2, 2), layers_per_block=4, **kwargs)


@register_model
def vov3d_m_v2(num_classes: int = 400, **kwargs) -> VideoClassifier:
    """VoV3D-M as redefined in April 2021 (the current original weights): K 40, blocks (1,2,3,2), 5 layers."""
    return build_vov3d(num_classes, inner_channels=40, blocks=(1, 2, 3, 2), layers_per_block=5, **kwargs)


@register_model
def vov3d_l(num_classes: int = 400, **kwargs) -> VideoClassifier:
    """VoV3D-L: K 48, blocks (1,2,5,3), 5 layers per T-OSA."""
    return build_vov3d(num_classes, inner_channels=48, blocks=(1, 2, 5, 3), layers_per_block=5, **kwargs)
