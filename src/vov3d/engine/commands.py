"""``vov3d run`` / ``vov3d train`` / ``vov3d test``: the entry points the cli calls (spec §10).

``vov3d run`` is ``tools/run_net.py`` (same arguments). ``vov3d train`` and ``vov3d test`` take the
same ``--cfg`` and ``KEY VALUE`` overrides plus friendlier flags for the common keys; a flag is
applied before the ``KEY VALUE`` pairs, so an explicit pair wins.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from vov3d.engine import run_net

# flag -> (config key, type, help)
_COMMON = {
    "data": ("DATA.PATH_TO_DATA_DIR", str, "dataset folder (DATA.PATH_TO_DATA_DIR)"),
    "output": ("OUTPUT_DIR", str, "output folder: checkpoints, log.txt, config.yaml (OUTPUT_DIR)"),
    "workers": ("DATA_LOADER.NUM_WORKERS", int, "data loader worker processes (DATA_LOADER.NUM_WORKERS)"),
    "gpus": ("NUM_GPUS", int, "GPUs to use; 0 = the CPU (NUM_GPUS)"),
}
_TRAIN = {
    "epochs": ("SOLVER.MAX_EPOCH", int, "epochs to train (SOLVER.MAX_EPOCH)"),
    "batch_size": ("TRAIN.BATCH_SIZE", int, "total training batch size (TRAIN.BATCH_SIZE)"),
    "checkpoint": ("TRAIN.CHECKPOINT_FILE_PATH", str, "weights to fine-tune from (TRAIN.CHECKPOINT_FILE_PATH)"),
    "lr": ("SOLVER.BASE_LR", float, "base learning rate (SOLVER.BASE_LR)"),
}
_TEST = {
    "checkpoint": ("TEST.CHECKPOINT_FILE_PATH", str, "checkpoint to test (TEST.CHECKPOINT_FILE_PATH)"),
    "batch_size": ("TEST.BATCH_SIZE", int, "total test batch size (TEST.BATCH_SIZE)"),
    "views": ("TEST.NUM_ENSEMBLE_VIEWS", int, "temporal views a video (TEST.NUM_ENSEMBLE_VIEWS)"),
    "crops": ("TEST.NUM_SPATIAL_CROPS", int, "spatial crops a view: 1 or 3 (TEST.NUM_SPATIAL_CROPS)"),
}


def _parser(prog: str, description: str, flags: dict[str, tuple[str, type, str]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--cfg", dest="cfg_file", default=None, help="config file (YAML)")
    for name, (_key, kind, text) in flags.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None, help=text)
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE pairs overriding the config")
    return parser


def _flag_opts(args: argparse.Namespace, flags: dict[str, tuple[str, type, str]]) -> list[str]:
    opts: list[str] = []
    for name, (key, _kind, _text) in flags.items():
        value = getattr(args, name)
        if value is not None:
            opts += [key, str(value)]
    return opts


def _main(argv: Sequence[str] | None, prog: str, description: str, flags: dict[str, tuple[str, type, str]],
          enable: list[str]) -> int:
    args = _parser(prog, description, flags).parse_args(list(sys.argv[1:] if argv is None else argv))
    opts = enable + _flag_opts(args, flags) + list(args.opts or [])
    if len(opts) % 2:
        print(f"error: overrides come in KEY VALUE pairs; {opts[-1]!r} has no value", file=sys.stderr)
        return run_net.USER_ERROR_STATUS

    return run_net.launch_job(args.cfg_file, opts)  # NUM_GPUS processes, or torchrun's (docs/distributed.md)


def run_main(argv: Sequence[str] | None = None) -> int:
    """``vov3d run --cfg FILE [KEY VALUE ...]``: exactly ``tools/run_net.py``."""
    return run_net.main(argv, prog="vov3d run")


def train_main(argv: Sequence[str] | None = None) -> int:
    """``vov3d train [--cfg FILE] [--data D --output O --epochs N ...] [KEY VALUE ...]``: train only."""
    return _main(argv, "vov3d train", "Train a model (TRAIN.ENABLE True, TEST.ENABLE False).", {**_COMMON, **_TRAIN},
                 ["TRAIN.ENABLE", "True", "TEST.ENABLE", "False"])


def test_main(argv: Sequence[str] | None = None) -> int:
    """``vov3d test [--cfg FILE] [--checkpoint C --views V --crops S ...] [KEY VALUE ...]``: test only."""
    return _main(argv, "vov3d test", "Test a checkpoint with multi-view ensembles (TRAIN.ENABLE False).",
                 {**_COMMON, **_TEST}, ["TRAIN.ENABLE", "False", "TEST.ENABLE", "True"])
