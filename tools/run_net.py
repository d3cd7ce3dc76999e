#!/usr/bin/env python
"""PySlowFast's entry point, as the original README runs it (spec §10):

    python tools/run_net.py --cfg configs/Kinetics/vov3d/vov3d_M.yaml DATA.PATH_TO_DATA_DIR data/k400 NUM_GPUS 1

A thin script: everything is in ``vov3d.engine.run_net``. It also runs from a source checkout where
vov3d is not installed (``src/`` is then put on the path).
"""

import sys
from pathlib import Path

try:
    import vov3d  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vov3d.engine.run_net import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
