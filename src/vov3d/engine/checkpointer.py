"""Which checkpoint a run starts from, and writing the run's checkpoints (spec §9.4, §11.9).

Files are the original's: ``OUTPUT_DIR/checkpoints/checkpoint_epoch_{epoch+1:05d}.pyth`` holding
``{"model_state", "optimizer_state", "epoch", "cfg"}`` (``epoch`` = 0-based index of the finished
epoch), written atomically by ``vov3d.checkpoint.save_checkpoint`` and read with
``torch.load(weights_only=True)``. Ours add, under extra keys the original ignores:

* ``train_state``: where the run is (``epoch`` in progress and ``iter`` = iterations done in it,
  0 at an epoch boundary), the torch random state, the epoch history for the plots and the
  running sums of the unfinished epoch;
* ``ema_state`` / ``scaler_state`` when EMA or the fp16 grad scaler are on.

Mid-epoch checkpoints (TRAIN.CHECKPOINT_ITER_PERIOD > 0) are named
``checkpoint_epoch_{epochs_done:05d}_iter_{iters_done:06d}.pyth``: they sort after the end-of-epoch
file of the previous epoch and before the next one; only the newest is kept.

Starting a run (``resolve_train_start``), differences from the original on purpose:

* AUTO_RESUME takes the newest *valid* checkpoint: a truncated newest file is reported with its path
  and the one before it is used (the original would crash on it).
* Fine-tuning (TRAIN.CHECKPOINT_FILE_PATH, nothing in OUTPUT_DIR) never takes over the file's epoch or
  optimizer state (the original does unless CHECKPOINT_EPOCH_RESET, §9.4), re-initialises a classifier
  of another size with a log line, and fails on any other mismatch unless TRAIN.FINETUNE_LOAD_WHAT_FITS.
* Testing (``resolve_test_checkpoint``) loads strictly and never runs on random weights silently.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from vov3d.checkpoint import (
    CLASSIFIER_PREFIX,
    CheckpointError,
    LoadReport,
    extract_state_dict,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)

logger = logging.getLogger(__name__)

CHECKPOINT_DIR_NAME = "checkpoints"
_NAME = re.compile(r"^checkpoint_epoch_(\d{5})(?:_iter_(\d{6}))?\.pyth$")

__all__ = [
    "CheckpointError",
    "TrainStart",
    "checkpoint_dir",
    "epoch_checkpoint_path",
    "iter_checkpoint_path",
    "list_checkpoints",
    "newest_valid_checkpoint",
    "choose_resume_checkpoint",
    "last_checkpoint",
    "resolve_train_start",
    "resolve_test_checkpoint",
    "load_model_weights",
    "write_checkpoint",
]


def checkpoint_dir(output_dir: str | os.PathLike) -> Path:
    """``OUTPUT_DIR/checkpoints``."""
    return Path(output_dir) / CHECKPOINT_DIR_NAME


def epoch_checkpoint_path(output_dir: str | os.PathLike, epoch: int) -> Path:
    """The file written after 0-based epoch ``epoch``: ``checkpoint_epoch_{epoch+1:05d}.pyth`` (§9.4)."""
    return checkpoint_dir(output_dir) / f"checkpoint_epoch_{epoch + 1:05d}.pyth"


def iter_checkpoint_path(output_dir: str | os.PathLike, epoch: int, iters_done: int) -> Path:
    """The mid-epoch file of 0-based epoch ``epoch`` after ``iters_done`` iterations of it."""
    return checkpoint_dir(output_dir) / f"checkpoint_epoch_{epoch:05d}_iter_{iters_done:06d}.pyth"


def _position(path: Path) -> tuple[int, int] | None:
    """(epochs done, iterations done in the next epoch) that a checkpoint name stands for."""
    match = _NAME.match(path.name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The run's checkpoints, oldest first (by position in training, not by name or time)."""
    folder = checkpoint_dir(output_dir)
    if not folder.is_dir():
        return []
    found = [(pos, p) for p in folder.iterdir() if p.is_file() and (pos := _position(p)) is not None]
    return [p for _, p in sorted(found)]


def _read_valid(path: Path) -> dict[str, Any] | None:
    """The checkpoint's contents, or None (with a warning naming the file) if it cannot be read."""
    try:
        obj = read_checkpoint(path)
        extract_state_dict(obj, str(path))
    except CheckpointError as err:
        logger.warning("skipping unreadable checkpoint %s (%s); trying the one before it", path, err)
        return None
    return obj


def newest_valid_checkpoint(output_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of the run that reads back, and its contents; None if there is none.

    A truncated or corrupt newer file is reported (logged with its path) and skipped.
    """
    for path in reversed(list_checkpoints(output_dir)):
        obj = _read_valid(path)
        if obj is not None:
            return path, obj
    return None


def last_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint file of the run (valid or not), or None."""
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


@dataclass
class TrainStart:
    """Where training starts: the epoch, the iteration in it and the state to restore."""

    epoch: int = 0  # 0-based epoch to run next (or to continue)
    iter: int = 0  # iterations of `epoch` already done (mid-epoch resume)
    source: str = ""  # the file, or "" for a fresh start
    resumed: bool = False  # True: a checkpoint of this run (optimizer etc. restored)
    train_state: dict[str, Any] = field(default_factory=dict)
    ema_state: dict[str, Any] | None = None
    scaler_state: dict[str, Any] | None = None


def _held_model(state: Mapping[str, torch.Tensor]) -> str:
    """The registered model whose layout ``state`` has exactly (any number of classes), or ""."""
    try:
        from vov3d.pretrained import definitions_matching

        found = definitions_matching(state)
    except Exception:  # naming the model is a hint only
        return ""
    return found[0] if found else ""


def load_model_weights(
    model: nn.Module,
    path: str | os.PathLike,
    obj: Mapping[str, Any],
    model_name: str,
    *,
    strict: bool = True,
    skip_mismatched_classifier: bool = False,
) -> LoadReport:
    """Load ``obj``'s weights into ``model``; a mismatch names the file and, if known, the model it holds
    (e.g. "the file holds a vov3d_m_v2; the config builds vov3d_m": decided from the tensors)."""
    state = extract_state_dict(obj, str(path))
    own = model.state_dict()
    if strict:
        def excused(key: str) -> bool:
            return skip_mismatched_classifier and key.startswith(CLASSIFIER_PREFIX)

        missing = [k for k in own if k not in state and not excused(k)]
        unexpected = [k for k in state if k not in own]
        mismatched = [f"{k} (file {list(state[k].shape)}, model {list(v.shape)})" for k, v in own.items()
                      if k in state and state[k].shape != v.shape and not excused(k)]
        if missing or unexpected or mismatched:
            held = _held_model(state)
            if held and held != model_name:
                raise CheckpointError(
                    f"{path}: the file holds a {held}; the config builds {model_name} "
                    "(MODEL.MODEL_NAME and the VOV3D/X3D keys decide the model)"
                )
            parts = [f"{len(items)} {what}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                     for what, items in (("missing from the file", missing), ("unexpected in the file", unexpected),
                                         ("of another shape", mismatched)) if items]
            only_classifier = not (missing or unexpected) and all(m.startswith(CLASSIFIER_PREFIX) for m in mismatched)
            hint = " (only the classifier differs: MODEL.NUM_CLASSES)" if only_classifier else ""
            raise CheckpointError(f"{path}: the checkpoint does not fit the model {model_name}: "
                                  + "; ".join(parts) + hint)
    try:
        report = load_checkpoint(
            model, {"model_state": state}, strict=strict, skip_mismatched_classifier=skip_mismatched_classifier
        )
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    report.source = str(path)
    return report


def choose_resume_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The file AUTO_RESUME starts from: the newest valid checkpoint, None if the run has none.

    Raises CheckpointError (naming the files) when there are checkpoints but none can be read.
    """
    found = newest_valid_checkpoint(output_dir)
    if found is None and list_checkpoints(output_dir):
        names = ", ".join(str(p) for p in list_checkpoints(output_dir))
        raise CheckpointError(
            f"AUTO_RESUME: no checkpoint in {checkpoint_dir(output_dir)} can be read ({names}); "
            "remove them or set TRAIN.AUTO_RESUME False"
        )
    return None if found is None else found[0]


def resolve_train_start(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    output_dir: str | os.PathLike,
    auto_resume: bool,
    finetune_path: str,
    model_name: str,
    load_what_fits: bool = False,
    clear_name_patterns: Sequence[str] = (),
    resume_choice: Callable[[Path], Path | None] | None = None,
) -> TrainStart:
    """Load the checkpoint training starts from into ``model``/``optimizer`` (spec §9.4, our rules above).

    1. AUTO_RESUME and a valid checkpoint in OUTPUT_DIR: model, optimizer, epoch (and the mid-epoch
       position, EMA/scaler state) are restored; the model must fit exactly.
    2. Else TRAIN.CHECKPOINT_FILE_PATH: weights only (fine-tuning); a classifier of another size is
       re-initialised with a log line; any other mismatch is an error unless ``load_what_fits``.
    3. Else a fresh start.

    ``resume_choice(output_dir)`` picks the AUTO_RESUME file instead of :func:`choose_resume_checkpoint`
    (a distributed job: rank 0 chooses, every rank loads the same file).
    """
    if auto_resume:
        found: tuple[Path, dict[str, Any]] | None
        if resume_choice is None:
            found = newest_valid_checkpoint(output_dir)
            if found is None:
                choose_resume_checkpoint(output_dir)  # raises if there are checkpoints but none reads back
        else:
            chosen = resume_choice(Path(output_dir))
            found = None if chosen is None else (chosen, read_checkpoint(chosen))
        if found is not None:
            path, obj = found
            load_model_weights(model, path, obj, model_name, strict=True)
            if "optimizer_state" in obj:
                try:
                    optimizer.load_state_dict(obj["optimizer_state"])
                except (ValueError, KeyError) as err:
                    raise CheckpointError(f"{path}: the optimizer state does not fit this optimizer: {err}") from None
            train_state = dict(obj.get("train_state") or {})
            if train_state:
                epoch, it = int(train_state.get("epoch", 0)), int(train_state.get("iter", 0))
            else:  # a checkpoint of the original code: epoch = last finished epoch
                epoch, it = int(obj.get("epoch", -1)) + 1, 0
            logger.info("resuming from %s: epoch %d, iteration %d", path, epoch + 1, it)
            return TrainStart(
                epoch=epoch, iter=it, source=str(path), resumed=True, train_state=train_state,
                ema_state=obj.get("ema_state"), scaler_state=obj.get("scaler_state"),
            )
    if finetune_path:
        path = Path(finetune_path)
        obj = read_checkpoint(path)
        if clear_name_patterns:  # TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN: substrings removed from the names
            state = extract_state_dict(obj, str(path))
            for pattern in clear_name_patterns:
                state = {k.replace(pattern, ""): v for k, v in state.items()}
            obj = {**{k: v for k, v in obj.items() if k not in ("model_state", "state_dict")}, "model_state": state}
        report = load_model_weights(
            model, path, obj, model_name, strict=not load_what_fits, skip_mismatched_classifier=True
        )
        if report.skipped_classifier:
            logger.info(
                "fine-tuning from %s: classifier %s re-initialised (another number of classes in the file)",
                path, ", ".join(report.skipped_classifier),
            )
        if load_what_fits and not report.ok:
            logger.warning("TRAIN.FINETUNE_LOAD_WHAT_FITS: loaded what fits from %s:\n%s", path, report)
        ignored = [k for k in ("epoch", "optimizer_state") if k in obj]
        logger.info(
            "fine-tuning from %s: %d tensors loaded; starting at epoch 1%s", path, report.loaded,
            f" (the file's {' and '.join(ignored)} not taken over)" if ignored else "",
        )
        return TrainStart(source=str(path))
    return TrainStart()


def resolve_test_checkpoint(
    *, test_path: str, output_dir: str | os.PathLike, train_path: str
) -> Path:
    """The checkpoint a test loads (spec §9.4 order): TEST.CHECKPOINT_FILE_PATH, the newest valid
    checkpoint in OUTPUT_DIR, TRAIN.CHECKPOINT_FILE_PATH; else an error (the original tests random
    weights with a warning)."""
    if test_path:
        return Path(test_path)
    found = newest_valid_checkpoint(output_dir)
    if found is not None:
        return found[0]
    if train_path:
        return Path(train_path)
    raise CheckpointError(
        f"no checkpoint to test: TEST.CHECKPOINT_FILE_PATH is empty, {checkpoint_dir(output_dir)} holds no "
        "valid checkpoint and TRAIN.CHECKPOINT_FILE_PATH is empty; set TEST.CHECKPOINT_FILE_PATH to a "
        "checkpoint file"
    )


def write_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    *,
    finished_epoch: int,
    cfg_yaml: str | None,
    train_state: Mapping[str, Any],
    ema_state: Mapping[str, Any] | None = None,
    scaler_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write one checkpoint atomically and drop older mid-epoch files (only the newest is kept)."""
    extra: dict[str, Any] = {"train_state": dict(train_state)}
    if ema_state is not None:
        extra["ema_state"] = dict(ema_state)
    if scaler_state is not None:
        extra["scaler_state"] = dict(scaler_state)
    save_checkpoint(path, model, optimizer, epoch=finished_epoch, cfg=cfg_yaml, extra=extra)
    here = _position(path)
    for other in list_checkpoints(path.parent.parent):
        pos = _position(other)
        if other != path and pos is not None and pos[1] > 0 and here is not None and pos < here:
            try:
                other.unlink()
            except OSError:
                pass
    return path
