"""``vov3d train``: train a model from a config, with flags for the common keys (``vov3d.engine.commands.train_main``)."""

NAME = "train"
HELP = "train a model from a config, with flags for the common keys"
ENTRY = "vov3d.engine.commands:train_main"
