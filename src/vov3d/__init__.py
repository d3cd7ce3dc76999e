"""vov3d: VoV3D and X3D video classification networks (arXiv 2012.00317), data pipeline and tools.

    >>> import vov3d
    >>> model = vov3d.create_model("vov3d_m", num_classes=174)
    >>> vov3d.list_models()
    ['vov3d_l', 'vov3d_m', 'vov3d_m_v2', 'x3d_l', 'x3d_m']
"""

from vov3d.checkpoint import CheckpointError, LoadReport, load_checkpoint, save_checkpoint
from vov3d.models import create_model, list_models, register_model
from vov3d.models.complexity import count_gmacs, count_parameters, model_complexity
from vov3d.models.inference import prepare_for_inference

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "LoadReport",
    "count_gmacs",
    "count_parameters",
    "create_model",
    "list_models",
    "load_checkpoint",
    "model_complexity",
    "prepare_for_inference",
    "register_model",
    "save_checkpoint",
]
