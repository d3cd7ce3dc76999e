"""``vov3d models``: the registered model names, one a line."""

from __future__ import annotations

import argparse

NAME = "models"
HELP = "list the registered models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from vov3d.models import list_models

    print("\n".join(list_models()))
    return 0
