"""``vov3d``: the parser of every verb, and how errors reach the user.

To add a verb, write a module ``cli/<verb>.py`` with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int`` (or, for a verb with sub-verbs, ``register(subparsers)``; see
``cli/data.py``), and add it to ``VERB_MODULES``. Verb modules import the library only inside
``run``, so ``vov3d --help`` stays fast.

Exit status: what the verb returns (0 = success; ``vov3d data check`` returns 1 when it finds bad
files); 2 for a usage error or a user's mistake (a bad argument, a missing or malformed file):
``vov3d <verb>: error: <message>`` on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType
from typing import Any, Sequence

DESCRIPTION = "VoV3D and X3D video classification: models, data and tools."

VERB_MODULES = ("flops", "models", "data")
"""The verbs, in ``vov3d --help`` order: the modules ``vov3d.cli.<name>``."""


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the user got something wrong (not a bug): reported in one line."""
    from vov3d.data.errors import DataError  # light: no torch

    # ValueError covers CheckpointError, AnnotationError, EmptySplitError and the config errors.
    return (ValueError, KeyError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, DataError)


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]  # str(KeyError) adds quotes
    return str(exc) or type(exc).__name__


def verb_modules() -> list[ModuleType]:
    """The modules of ``VERB_MODULES``."""
    return [importlib.import_module(f"vov3d.cli.{name}") for name in VERB_MODULES]


def add_verb(subparsers: argparse._SubParsersAction, verb: Any, parent: str = "") -> argparse.ArgumentParser:
    """Add a leaf verb to `subparsers`: `verb` has ``NAME``, ``HELP``, ``add_arguments`` and ``run``.

    parent: the words before it (e.g. "data" for ``vov3d data check``), for error messages.
    """
    parser = subparsers.add_parser(verb.NAME, help=verb.HELP, description=verb.HELP)
    verb.add_arguments(parser)
    parser.set_defaults(run=verb.run, verb=f"{parent} {verb.NAME}".strip())
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``vov3d`` parser with every verb of ``VERB_MODULES``."""
    parser = argparse.ArgumentParser(prog="vov3d", description=DESCRIPTION)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="<verb>")
    for module in verb_modules():
        if hasattr(module, "register"):
            module.register(subparsers)
        else:
            add_verb(subparsers, module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vov3d`` with `argv` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    from vov3d.utils.logging import setup_logging

    setup_logging()  # warnings of the library (e.g. bad samples) as plain lines on stderr
    try:
        return int(args.run(args) or 0)
    except _user_errors() as exc:
        print(f"vov3d {args.verb}: error: {_message(exc)}", file=sys.stderr)
        return 2
