"""The PySlowFast-compatible entry point: ``python tools/run_net.py --cfg FILE [KEY VALUE ...]`` (spec §10).

Builds the config (defaults <- ``--cfg`` YAML <- ``KEY VALUE`` overrides, also after ``--opts`` as in
newer PySlowFast), then trains if TRAIN.ENABLE and tests if TEST.ENABLE. ``--shard_id``,
``--num_shards`` and ``--init_method`` are accepted (NUM_SHARDS/SHARD_ID are stored in the config);
launching several processes (NUM_GPUS > 1 or several shards) is not supported yet and is refused with
a message naming the key or flag. Unlike the original, nothing beyond vov3d's own dependencies is
imported (no detectron2, no PySlowFast).

A user's mistake (a bad key or value, a missing data folder, an empty split, a checkpoint of another
model or a truncated one, more GPUs than present) ends with one message on stderr and exit status 2,
without a traceback; a NaN/Inf loss with status 1. SIGTERM (a preemption) checkpoints the position
in the epoch and ends with status 143; the same command resumes there.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable, Sequence

logger = logging.getLogger(__name__)

USER_ERROR_STATUS = 2
TRAINING_ERROR_STATUS = 1
STOPPED_STATUS = 143  # 128 + SIGTERM, as a shell reports a process ended by it


def build_parser(prog: str = "run_net.py") -> argparse.ArgumentParser:
    """The original's arguments (spec §10) plus ``--opts``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train and/or test a VoV3D/X3D model as configured (PySlowFast's tools/run_net.py).",
        epilog="Example: %(prog)s --cfg configs/Kinetics/vov3d/vov3d_M.yaml DATA.PATH_TO_DATA_DIR data/k400 NUM_GPUS 1",
    )
    parser.add_argument("--cfg", dest="cfg_file", default=None, help="path to the config file (YAML)")
    parser.add_argument("--shard_id", type=int, default=None, help="the shard id of this machine (NUM_SHARDS > 1)")
    parser.add_argument("--num_shards", type=int, default=None, help="number of machines (shards) of the job")
    parser.add_argument("--init_method", default=None,
                        help="torch.distributed init method, e.g. tcp://localhost:9999 (multi-machine jobs)")
    parser.add_argument("--opts", dest="more_opts", nargs=argparse.REMAINDER, default=[],
                        help="KEY VALUE pairs (as in newer PySlowFast), after the positional ones")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE pairs overriding the config")
    return parser


def user_error_types() -> tuple[type[BaseException], ...]:
    """Errors that are a user's mistake: reported in one line, exit status 2."""
    from vov3d.checkpoint import CheckpointError
    from vov3d.data import DataError
    from vov3d.engine.trainer import SetupError

    types: list[type[BaseException]] = [CheckpointError, DataError, SetupError, FileNotFoundError,
                                         NotADirectoryError, IsADirectoryError, PermissionError,
                                         ValueError]  # e.g. a setting the builders refuse, naming the key
    try:
        from vov3d.config import ConfigError

        types.append(ConfigError)
    except ImportError:
        pass
    return tuple(types)


def collect_opts(args: argparse.Namespace) -> list[str]:
    """``KEY VALUE`` overrides: the positional ones, ``--opts`` ones, then the shard flags."""
    opts = list(args.opts or []) + list(args.more_opts or [])
    opts = [o for o in opts if o != "--opts"]  # argparse leaves a later `--opts` inside the positional remainder
    if args.num_shards is not None:
        opts += ["NUM_SHARDS", str(args.num_shards)]
    if args.shard_id is not None:
        opts += ["SHARD_ID", str(args.shard_id)]
    return opts


def check_single_process(cfg: Any, args: argparse.Namespace | None) -> None:
    """Refuse what needs several processes (a later task launches them), naming the key or flag."""
    from vov3d.engine.trainer import SetupError, resolve_device

    if args is not None and args.num_shards is not None and args.num_shards > 1:
        raise SetupError(f"--num_shards {args.num_shards}: multi-machine jobs are not yet supported; use one machine")
    if int(cfg.NUM_SHARDS) > 1:
        raise SetupError(f"NUM_SHARDS {cfg.NUM_SHARDS}: multi-machine jobs are not yet supported; set NUM_SHARDS 1")
    resolve_device(int(cfg.NUM_GPUS))  # NUM_GPUS > present, or > 1: a clear error now, not a hang later


def check_data_folder(cfg: Any) -> None:
    """A missing DATA.PATH_TO_DATA_DIR is named now, before a model is built."""
    from pathlib import Path

    from vov3d.engine.trainer import SetupError

    folder = str(cfg.DATA.PATH_TO_DATA_DIR or "")
    if (cfg.TRAIN.ENABLE or cfg.TEST.ENABLE) and folder and not Path(folder).is_dir():
        raise SetupError(f"DATA.PATH_TO_DATA_DIR {folder}: no such folder (expected the dataset's annotation files)")


def run(cfg: Any, args: argparse.Namespace | None = None) -> dict[str, Any]:
    """Train then test as the config says; returns {"train": ..., "test": ...} summaries."""
    from vov3d.utils.logging import setup_logging

    from vov3d.engine.trainer import world_info

    setup_logging(cfg.OUTPUT_DIR, rank=world_info()[1])
    check_single_process(cfg, args)
    check_data_folder(cfg)
    results: dict[str, Any] = {}
    if cfg.TRAIN.ENABLE:
        from vov3d.engine.trainer import train

        results["train"] = train(cfg)
    if cfg.TEST.ENABLE:
        from vov3d.engine.tester import test

        results["test"] = test(cfg)
    if not (cfg.TRAIN.ENABLE or cfg.TEST.ENABLE):
        logger.warning("TRAIN.ENABLE and TEST.ENABLE are both False: nothing to do")
    return results


def guarded(fn: Callable[[], Any]) -> int:
    """Run ``fn``: 0 on success; a user's mistake -> its message on stderr and status 2; NaN -> status 1.

    With the environment variable VOV3D_DEBUG set, errors propagate with their traceback.
    """
    from vov3d.engine.trainer import TrainingError, TrainingStopped

    if os.environ.get("VOV3D_DEBUG"):  # the full traceback of any error, for bug reports
        fn()
        return 0
    try:
        fn()
    except TrainingStopped as err:
        print(f"{err}", file=sys.stderr)
        return STOPPED_STATUS
    except TrainingError as err:
        print(f"error: {err}", file=sys.stderr)
        return TRAINING_ERROR_STATUS
    except user_error_types() as err:
        message = str(err)
        if isinstance(err, KeyError) and err.args:
            message = str(err.args[0])
        print(f"error: {message}", file=sys.stderr)
        return USER_ERROR_STATUS
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "run_net.py") -> int:
    """``run_net.py --cfg FILE [KEY VALUE ...]``: train and/or test; returns the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    opts = collect_opts(args)
    if len(opts) % 2:
        print(f"error: overrides come in KEY VALUE pairs; {opts[-1]!r} has no value", file=sys.stderr)
        return USER_ERROR_STATUS

    def go() -> None:
        from vov3d.config import load_config

        cfg = load_config(args.cfg_file, opts)
        run(cfg, args)

    return guarded(go)


if __name__ == "__main__":
    sys.exit(main())
