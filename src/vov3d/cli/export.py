"""``vov3d export``: export a model to ONNX or TorchScript and check it against PyTorch (``vov3d.engine.export.main``)."""

NAME = "export"
HELP = "export a model to ONNX or TorchScript and check it against PyTorch"
ENTRY = "vov3d.engine.export:main"
