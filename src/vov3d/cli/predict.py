"""``vov3d predict``: top-k classes of video files (``vov3d.engine.predict.main``)."""

NAME = "predict"
HELP = "top-k classes of video files"
ENTRY = "vov3d.engine.predict:main"
