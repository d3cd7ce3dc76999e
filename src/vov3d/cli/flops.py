"""``vov3d flops MODEL``: parameters and GFLOPs per view of a model (spec §6)."""

from __future__ import annotations

import argparse
import json

NAME = "flops"
HELP = "parameters and GFLOPs per view of a model (spec §6)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model name, see `vov3d models`")
    parser.add_argument("--num-classes", type=int, default=400)
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (T)")
    parser.add_argument("--size", type=int, default=224, help="square crop size (H = W)")
    parser.add_argument(
        "--train-crop-size",
        type=int,
        default=None,
        help="original head only: the training crop that fixes the head's pool (default: --size)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from vov3d.models import complexity

    stats = complexity.model_complexity(
        args.model,
        num_classes=args.num_classes,
        frames=args.frames,
        size=args.size,
        train_crop_size=args.train_crop_size,
    )
    print(json.dumps(stats, sort_keys=True) if args.json else complexity.format_complexity(stats))
    return 0
