"""``vov3d test``: multi-view test of a checkpoint from a config, with flags for the common keys (``vov3d.engine.commands.test_main``)."""

NAME = "test"
HELP = "multi-view test of a checkpoint from a config, with flags for the common keys"
ENTRY = "vov3d.engine.commands:test_main"
