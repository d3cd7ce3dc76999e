"""The `vov3d` command line: a thin layer that parses arguments and calls the library.

Each sub-command imports what it needs when it runs, so `vov3d --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def _cmd_flops(args: argparse.Namespace) -> int:
    from vov3d.models import complexity

    stats = complexity.model_complexity(
        args.model,
        num_classes=args.num_classes,
        frames=args.frames,
        size=args.size,
        train_crop_size=args.train_crop_size,
    )
    if args.json:
        print(json.dumps(stats, sort_keys=True))
    else:
        print(complexity.format_complexity(stats))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    import vov3d

    print("\n".join(vov3d.list_models()))
    return 0


def _cmd_data_synth(args: argparse.Namespace) -> int:
    from vov3d.data import synth

    summary = synth.generate_dataset(
        args.out,
        formats=args.format,
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        num_test=args.num_test,
        overwrite=args.overwrite,
    )
    print(json.dumps(summary, indent=1, sort_keys=True))
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from vov3d.data.check import check_splits

    failed = False
    for summary in check_splits(
        args.format, args.data_dir, args.split, seed=args.seed, batch_size=args.batch_size, num_workers=args.workers
    ):
        print(json.dumps(summary))
        failed = failed or summary["bad_videos"] > 0
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vov3d", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("flops", help="parameters and GFLOPs per view of a model (spec §6)")
    p.add_argument("model", help="model name, see `vov3d models`")
    p.add_argument("--num-classes", type=int, default=400)
    p.add_argument("--frames", type=int, default=16, help="frames per clip (T)")
    p.add_argument("--size", type=int, default=224, help="square crop size (H = W)")
    p.add_argument(
        "--train-crop-size",
        type=int,
        default=None,
        help="original head only: the training crop that fixes the head's pool (default: --size)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_flops)

    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(func=_cmd_models)

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("synth", help="write the built-in synthetic temporal dataset")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--format",
        choices=["kinetics", "ssv1", "ssv2", "all"],
        default="kinetics",
        help="annotation format(s) to write (default: kinetics)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-train", type=int, default=None, help="training videos (default: generator's)")
    p.add_argument("--num-val", type=int, default=None, help="validation videos")
    p.add_argument("--num-test", type=int, default=None, help="test videos")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a synthetic dataset written with other settings (never a folder that is not one)",
    )
    p.set_defaults(func=_cmd_data_synth)

    p = data.add_parser("check", help="read every clip of a dataset through the pipeline; report bad files")
    p.add_argument("data_dir", help="the dataset folder (PATH_TO_DATA_DIR)")
    p.add_argument("--format", choices=["kinetics", "ssv1", "ssv2", "ssv2-video"], default="kinetics")
    p.add_argument("--split", nargs="+", choices=["train", "val", "test"], default=["train", "val", "test"])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_data_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"vov3d {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
