"""``vov3d data synth|check``: write the synthetic dataset; read a dataset through the pipeline (spec §8)."""

from __future__ import annotations

import argparse
import json

NAME = "data"
HELP = "datasets: write the synthetic one, check a real one"


def register(subparsers: argparse._SubParsersAction) -> None:
    """``data`` and its sub-verbs."""
    from vov3d.cli.main import add_verb

    parser = subparsers.add_parser(NAME, help=HELP, description=HELP)
    verbs = parser.add_subparsers(dest="data_command", required=True, metavar="<data verb>")
    for verb in (Synth, Check):
        add_verb(verbs, verb, parent=NAME)


class Synth:
    """``vov3d data synth``: docs/synthetic_data.md."""

    NAME = "synth"
    HELP = "write the built-in synthetic temporal dataset"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", required=True, help="output directory")
        parser.add_argument(
            "--format",
            choices=["kinetics", "ssv1", "ssv2", "all"],
            default="kinetics",
            help="annotation format(s) to write (default: kinetics)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--num-train", type=int, default=None, help="training videos (default: generator's)")
        parser.add_argument("--num-val", type=int, default=None, help="validation videos")
        parser.add_argument("--num-test", type=int, default=None, help="test videos")
        parser.add_argument(
            "--level",
            choices=["full", "medium", "easy"],
            default="full",
            help="difficulty: what surrounds the action (docs/synthetic_data.md#difficulty-levels; default full)",
        )
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="replace a synthetic dataset written with other settings (never a folder that is not one)",
        )

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from vov3d.data.synth import generate_dataset

        summary = generate_dataset(
            args.out,
            formats=args.format,
            seed=args.seed,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test=args.num_test,
            level=args.level,
            overwrite=args.overwrite,
        )
        print(json.dumps(summary, indent=1, sort_keys=True))
        return 0


class Check:
    """``vov3d data check``: docs/data.md, "Checking a dataset"."""

    NAME = "check"
    HELP = "read every clip of a dataset through the pipeline; report bad files (exit status 1 if any)"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("data_dir", help="the dataset folder (DATA.PATH_TO_DATA_DIR)")
        parser.add_argument("--format", choices=["kinetics", "ssv1", "ssv2", "ssv2-video"], default="kinetics")
        parser.add_argument(
            "--path-prefix",
            default="",
            help="DATA.PATH_PREFIX: prepended to the relative video/frame paths of the annotation files "
            "(ssv2-video: the folder of the .webm files)",
        )
        parser.add_argument(
            "--split", nargs="+", choices=["train", "val", "test"], default=["train", "val", "test"]
        )
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--seed", type=int, default=0)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from vov3d.data.check import check_splits

        failed = False
        for summary in check_splits(
            args.format,
            args.data_dir,
            args.split,
            path_prefix=args.path_prefix,
            seed=args.seed,
            batch_size=args.batch_size,
            num_workers=args.workers,
        ):
            print(json.dumps(summary), flush=True)
            failed = failed or summary["bad_videos"] > 0
        return 1 if failed else 0
