"""vov3d: VoV3D and X3D video classification networks (arXiv 2012.00317), data pipeline and tools."""

__version__ = "0.1.0"
