"""``vov3d run``: train and/or test as the config says: the original's tools/run_net.py (--cfg FILE KEY VALUE ...) (``vov3d.engine.commands.run_main``)."""

NAME = "run"
HELP = "train and/or test as the config says: the original's tools/run_net.py (--cfg FILE KEY VALUE ...)"
ENTRY = "vov3d.engine.commands:run_main"
