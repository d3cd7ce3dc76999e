"""The ``vov3d`` logger of a job: plain lines to stderr, and ``log.txt`` in the output folder (spec §9.6).

Every module logs through ``logging.getLogger(__name__)``, a child of ``vov3d``; a job (training,
testing, a command) calls :func:`setup_logging` once per process. In a distributed job every
rank logs to stderr with its rank in the line, and only rank 0 writes the file, so ``log.txt``
holds one copy of each message.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOGGER_NAME = "vov3d"
LOG_FILE_NAME = "log.txt"
_FORMAT = "[%(asctime)s %(levelname)s %(name)s] %(message)s"
_DATE_FORMAT = "%m/%d %H:%M:%S"
_MARK = "_vov3d_handler"  # attribute marking the handlers this module added


def setup_logging(
    output_dir: str | os.PathLike[str] | None = None, rank: int = 0, level: int = logging.INFO
) -> logging.Logger:
    """Configure and return the ``vov3d`` logger for this process.

    Lines go to stderr (every rank; ranks other than 0 are prefixed with ``[rank N]``) and, when
    `output_dir` is given and `rank` is 0, are appended to ``output_dir/log.txt`` (the folder is
    created). Calling it again replaces the handlers it added before (e.g. a new output folder)
    and leaves other handlers alone. Records still propagate to the root logger (where pytest's
    caplog and an application's own handlers see them); the root logger has no handler unless
    the application adds one.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ValueError(f"rank must be a non-negative int, got {rank!r}")
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if getattr(h, _MARK, False)]:
        logger.removeHandler(handler)
        handler.close()
    prefix = "" if rank == 0 else f"[rank {rank}] "
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if output_dir is not None and rank == 0:
        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(folder / LOG_FILE_NAME, mode="a", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(prefix + _FORMAT, datefmt=_DATE_FORMAT))
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger
