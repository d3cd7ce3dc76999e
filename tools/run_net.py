#!/usr/bin/env python
"""PySlowFast's entry point, as the original README runs it (spec §10):

    python tools/run_net.py --cfg configs/Kinetics/vov3d/vov3d_M.yaml DATA.PATH_TO_DATA_DIR data/k400 NUM_GPUS 1

A thin script: everything is in ``vov3d.engine.run_net``.
"""

import sys

from vov3d.engine.run_net import main

if __name__ == "__main__":
    sys.exit(main())
