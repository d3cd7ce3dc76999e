"""``vov3d models``: the registered model names, one a line; ``--pretrained``: the released weights."""

from __future__ import annotations

import argparse

NAME = "models"
HELP = "list the registered models (--pretrained: the released weights by tag)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="list the original release's weights: tag, model, data, reported accuracy, licence",
    )


def run(args: argparse.Namespace) -> int:
    if args.pretrained:
        from vov3d.pretrained import format_table

        print(format_table())
        return 0
    from vov3d.models import list_models

    print("\n".join(list_models()))
    return 0
