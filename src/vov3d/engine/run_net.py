"""The PySlowFast-compatible entry point: ``python tools/run_net.py --cfg FILE [KEY VALUE ...]`` (spec §10).

Builds the config (defaults <- ``--cfg`` YAML <- ``KEY VALUE`` overrides, also after ``--opts`` as in
newer PySlowFast), then trains if TRAIN.ENABLE and tests if TEST.ENABLE, in every process of the job
(issue 18, docs/distributed.md): under torchrun in place (ranks from its environment); otherwise
NUM_GPUS processes on this machine (N CPU processes with gloo on a machine without CUDA), joining
the other machines through ``--num_shards/--shard_id/--init_method`` (NUM_SHARDS/SHARD_ID are
stored in the config). A process that dies ends the job with a message naming its rank. Unlike the
original, nothing beyond vov3d's own dependencies is imported (no detectron2, no PySlowFast).

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


def check_data_folder(cfg: Any) -> None:
    """A missing DATA.PATH_TO_DATA_DIR is named now, before a model is built."""
    from pathlib import Path

    from vov3d.engine.trainer import SetupError

    folder = str(cfg.DATA.PATH_TO_DATA_DIR or "")
    if (cfg.TRAIN.ENABLE or cfg.TEST.ENABLE) and folder and not Path(folder).is_dir():
        raise SetupError(f"DATA.PATH_TO_DATA_DIR {folder}: no such folder (expected the dataset's annotation files)")


def run(cfg: Any, args: argparse.Namespace | None = None) -> dict[str, Any]:
    """Train then test as the config says, in this process; returns {"train": ..., "test": ...} summaries.

    In a job of several processes every process calls it (``run_worker``); ``args`` is unused (kept
    for callers of the single-process API)."""
    from vov3d.utils.logging import setup_logging

    from vov3d.engine.trainer import world_info

    setup_logging(cfg.OUTPUT_DIR, rank=world_info()[1])
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


def run_worker(cfg_file: str | None, opts: Sequence[str]) -> int:
    """One process of the job: load the config, train and/or test; returns the exit status.

    Module-level (picklable) for ``engine.distributed.launch``. In a spawned process of several a
    non-zero status ends the process with it (the parent then names the rank).
    """
    from vov3d.engine import distributed as D

    def go() -> None:
        from vov3d.config import load_config

        run(load_config(cfg_file, opts))

    status = guarded(go)
    if status and D.get_world_size() > 1 and not D.under_torchrun():
        raise SystemExit(status)
    return status


def launch_job(cfg_file: str | None, opts: Sequence[str], init_method: str | None = None) -> int:
    """Start the job the config describes (NUM_GPUS processes here, NUM_SHARDS machines, or torchrun's)
    and run :func:`run_worker` in each; returns the exit status (a failed process: its status, named)."""
    from vov3d.engine import distributed as D
    from vov3d.engine.trainer import SetupError

    status = 0

    def go() -> None:
        nonlocal status
        from vov3d.config import load_config

        cfg = load_config(cfg_file, opts)
        try:
            processes, use_cuda = D.processes_per_machine(int(cfg.NUM_GPUS))
        except ValueError as err:
            raise SetupError(str(err)) from None
        try:
            result = D.launch(
                run_worker, (cfg_file, list(opts)), num_processes=processes, num_shards=int(cfg.NUM_SHARDS),
                shard_id=int(cfg.SHARD_ID), init_method=init_method, backend=str(cfg.DIST_BACKEND),
                timeout_s=float(cfg.DIST_TIMEOUT), use_cuda=use_cuda,
            )
        except D.WorkerFailed as err:
            print(f"error: {err}", file=sys.stderr)
            code = err.exit_code
            status = code if code is not None and code > 0 else TRAINING_ERROR_STATUS
            return
        except SystemExit as err:  # run_worker of the one local process of a multi-machine job
            status = err.code if isinstance(err.code, int) else TRAINING_ERROR_STATUS
            return
        status = int(result or 0)

    return guarded(go) or status


def main(argv: Sequence[str] | None = None, prog: str = "run_net.py") -> int:
    """``run_net.py --cfg FILE [KEY VALUE ...]``: train and/or test; returns the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    opts = collect_opts(args)
    if len(opts) % 2:
        print(f"error: overrides come in KEY VALUE pairs; {opts[-1]!r} has no value", file=sys.stderr)
        return USER_ERROR_STATUS
    return launch_job(args.cfg_file, opts, args.init_method)


if __name__ == "__main__":
    sys.exit(main())
