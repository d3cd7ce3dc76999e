"""``python -m vov3d.cli``: the same as the ``vov3d`` command."""

import sys

from vov3d.cli.main import main

sys.exit(main())
