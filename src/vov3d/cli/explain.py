"""``vov3d explain``: Grad-CAM of a class over a video, as an animated overlay and a PNG strip (``vov3d.engine.explain.main``)."""

NAME = "explain"
HELP = "Grad-CAM of a class over a video, as an animated overlay and a PNG strip"
ENTRY = "vov3d.engine.explain:main"
