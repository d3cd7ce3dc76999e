"""The ``vov3d`` command line: ``vov3d <verb> ...``, one module a verb (registered in ``cli/main.py``).

Nothing in the package imports this layer; it parses arguments and calls the library.
"""

from __future__ import annotations

from vov3d.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
