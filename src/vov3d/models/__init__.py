"""VoV3D and X3D networks as pure building blocks, and a timm-style registry.

Importing this package registers ``vov3d_m``, ``vov3d_m_v2``, ``vov3d_l``, ``x3d_m`` and ``x3d_l``.
"""

from vov3d.models.d2plus1d import D2Plus1D
from vov3d.models.head import X3DHead
from vov3d.models.network import VideoClassifier
from vov3d.models.registry import create_model, list_models, register_model
from vov3d.models.res_block import ResBlock
from vov3d.models.squeeze_excitation import SqueezeExcitation
from vov3d.models.stem import X3DStem
from vov3d.models.temporal_osa import TemporalOSA
from vov3d.models.vov3d import build_vov3d, vov3d_l, vov3d_m, vov3d_m_v2
from vov3d.models.x3d import build_x3d, x3d_l, x3d_m
from vov3d.models.x3d_bottleneck import X3DBottleneck

__all__ = [
    "D2Plus1D",
    "ResBlock",
    "SqueezeExcitation",
    "TemporalOSA",
    "VideoClassifier",
    "X3DBottleneck",
    "X3DHead",
    "X3DStem",
    "build_vov3d",
    "build_x3d",
    "create_model",
    "list_models",
    "register_model",
    "vov3d_l",
    "vov3d_m",
    "vov3d_m_v2",
    "x3d_l",
    "x3d_m",
]
