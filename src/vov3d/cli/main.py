"""``vov3d``: the parser of every verb, and how errors reach the user.

To add a verb, write a module ``cli/<verb>.py`` with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int`` (or, for a verb with sub-verbs, ``register(subparsers)``; see
``cli/data.py``; or, for a verb whose command line lives in the engine, ``ENTRY = "module:main"``,
a ``main(argv) -> int`` that gets the rest of the command line), and add it to ``VERB_MODULES``.
Verb modules import the library only when they run, so ``vov3d --help`` stays fast.

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

VERB_MODULES = ("run", "train", "test", "predict", "export", "explain", "bench", "models", "flops", "data")
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


def _entry_of(verb: str) -> Any:
    """The ``main(argv)`` of a verb that names an ``ENTRY``, else None."""
    if verb not in VERB_MODULES:
        return None
    module = importlib.import_module(f"vov3d.cli.{verb}")
    if not hasattr(module, "ENTRY"):
        return None
    module_name, _, function = module.ENTRY.partition(":")
    return getattr(importlib.import_module(module_name), function)


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
        if hasattr(module, "ENTRY"):  # its own parser: listed here, parsed by the engine (main)
            subparsers.add_parser(module.NAME, help=module.HELP, add_help=False)
        elif hasattr(module, "register"):
            module.register(subparsers)
        else:
            add_verb(subparsers, module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vov3d`` with `argv` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    entry = _entry_of(argv[0]) if argv else None
    if entry is not None:  # the engine's own parser and error handling (``vov3d <verb> --help`` too)
        from vov3d.utils.logging import setup_logging

        setup_logging()
        return int(entry(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    from vov3d.utils.logging import setup_logging

    setup_logging()  # warnings of the library (e.g. bad samples) as plain lines on stderr
    try:
        return int(args.run(args) or 0)
    except _user_errors() as exc:
        print(f"vov3d {args.verb}: error: {_message(exc)}", file=sys.stderr)
        return 2
