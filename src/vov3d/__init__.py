"""vov3d: VoV3D and X3D video classification networks (arXiv 2012.00317), data pipeline and tools.

    >>> import vov3d
    >>> model = vov3d.create_model("vov3d_m", num_classes=174)
    >>> vov3d.list_models()
    ['vov3d_l', 'vov3d_m', 'vov3d_m_v2', 'x3d_l', 'x3d_m']

Light to import: the names below load their module (and torch) on first use.
"""

from __future__ import annotations

from vov3d._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "CheckpointError": "vov3d.checkpoint",
    "LoadReport": "vov3d.checkpoint",
    "load_checkpoint": "vov3d.checkpoint",
    "save_checkpoint": "vov3d.checkpoint",
    "create_model": "vov3d.pretrained",
    "list_pretrained": "vov3d.pretrained",
    "list_models": "vov3d.models",
    "register_model": "vov3d.models",
    "count_gmacs": "vov3d.models.complexity",
    "count_parameters": "vov3d.models.complexity",
    "model_complexity": "vov3d.models.complexity",
    "prepare_for_inference": "vov3d.accel.prepare",
    "prepare_for_training": "vov3d.accel.prepare",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
