"""Checkpoint files: the original PySlowFast format, bare state dicts, atomic saving (spec §9.4).

Our models use the original state-dict names and shapes (``shared/spec/layouts``), so the released
checkpoints load as they are, and the files we write are PySlowFast-style dicts that the original
code can read back: ``{"model_state", "optimizer_state", "epoch", "cfg"}``.

Differences from the original loader (spec §11.9), on purpose:

* Strict by default: missing, unexpected and mis-shaped keys are an error with a report, not
  silently left at their random initialisation. ``strict=False`` restores the original's
  behaviour of loading what fits, and still returns (and logs) the report.
* Fine-tuning with a classifier of another size is explicit: ``skip_mismatched_classifier=True``.
* Loading weights never touches the optimizer or the epoch counter; the training engine reads
  those from the file itself when it resumes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from vov3d.utils.atomic import atomic_write

logger = logging.getLogger(__name__)

CLASSIFIER_PREFIX = "head.projection."
_DDP_PREFIX = "module."


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the model."""


@dataclass
class LoadReport:
    """What ``load_checkpoint`` did: keys missing from the file, unexpected in it, of another shape."""

    source: str
    loaded: int = 0  # tensors that fit (and were loaded, unless a strict load failed)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    skipped_classifier: list[str] = field(default_factory=list)
    epoch: int | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [f"{self.source}: {self.loaded} tensors fit the model"]
        if self.skipped_classifier:
            lines.append(f"  classifier left at its initialisation: {', '.join(self.skipped_classifier)}")
        for title, items in (("missing from the file", self.missing), ("unexpected in the file", self.unexpected)):
            if items:
                more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
                lines.append(f"  {len(items)} {title}: {', '.join(items[:5])}{more}")
        for key, file_shape, model_shape in self.mismatched[:5]:
            lines.append(f"  shape mismatch {key}: file {list(file_shape)}, model {list(model_shape)}")
        if len(self.mismatched) > 5:
            lines.append(f"  ... and {len(self.mismatched) - 5} more shape mismatches")
        return "\n".join(lines)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint file with ``torch.load(weights_only=True)``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt, truncated or foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated, corrupt or another format): {first}"
        ) from exc
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict (a state dict or {{'model_state': ...}}), got {type(obj).__name__}")
    return dict(obj)


def extract_state_dict(obj: Mapping[str, Any], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The model weights of a loaded checkpoint: ``model_state`` (PySlowFast), ``state_dict``, or the dict itself.

    A DistributedDataParallel ``module.`` prefix is removed.
    """
    for key in ("model_state", "state_dict"):
        if key in obj:
            state = obj[key]
            break
    else:
        state = obj
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{source}: no model weights found (expected a 'model_state' dict or a state dict)")
    bad = next((k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        keys = ", ".join(map(str, list(obj)[:8]))
        raise CheckpointError(
            f"{source}: not a state dict: entry {bad!r} is a {type(state[bad]).__name__}, not a tensor "
            f"(top-level keys: {keys})"
        )
    if all(k.startswith(_DDP_PREFIX) for k in state):
        state = {k[len(_DDP_PREFIX) :]: v for k, v in state.items()}
    return dict(state)


def load_checkpoint(
    model: nn.Module,
    checkpoint: str | os.PathLike | Mapping[str, Any],
    strict: bool = True,
    skip_mismatched_classifier: bool = False,
    map_location: str | torch.device = "cpu",
) -> LoadReport:
    """Load weights into ``model`` from a file path or an already loaded dict.

    Accepts an original PySlowFast checkpoint (``{"model_state", "optimizer_state"?, "epoch"?, "cfg"?}``),
    a bare state dict, and the files ``save_checkpoint`` writes.

    Args:
        strict: raise ``CheckpointError`` (with the report) if any key is missing, unexpected or of
            another shape. With ``strict=False`` the tensors that fit are loaded, as the original does,
            and the rest is reported (and logged).
        skip_mismatched_classifier: for fine-tuning, leave a classifier (``head.projection.*``) of
            another size (or absent from the file) at its initialisation instead of failing.

    Returns:
        a ``LoadReport``; ``report.epoch`` is the file's ``epoch`` if it has one.
    """
    if isinstance(checkpoint, Mapping):
        source, obj = "state dict", dict(checkpoint)
    else:
        source, obj = str(checkpoint), read_checkpoint(checkpoint, map_location)
    state = extract_state_dict(obj, source)
    target = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    own = target.state_dict()

    report = LoadReport(source=source)
    epoch = obj.get("epoch") if "model_state" in obj else None
    report.epoch = int(epoch) if isinstance(epoch, (int, torch.Tensor)) else None
    report.unexpected = [k for k in state if k not in own]
    fitting = {}
    for key, value in own.items():
        is_classifier = key.startswith(CLASSIFIER_PREFIX)
        if key not in state:
            (report.skipped_classifier if is_classifier and skip_mismatched_classifier else report.missing).append(key)
        elif state[key].shape != value.shape:
            if is_classifier and skip_mismatched_classifier:
                report.skipped_classifier.append(key)
            else:
                report.mismatched.append((key, tuple(state[key].shape), tuple(value.shape)))
        else:
            fitting[key] = state[key]
    report.loaded = len(fitting)
    if strict and not report.ok:
        if report.mismatched and all(k.startswith(CLASSIFIER_PREFIX) for k, _, _ in report.mismatched):
            hint = "only the classifier differs: pass skip_mismatched_classifier=True to fine-tune"
        else:
            hint = guess_model(state)
        raise CheckpointError(f"checkpoint does not fit the model:\n{report}" + (f"\n  ({hint})" if hint else ""))
    target.load_state_dict(fitting, strict=False)
    if not report.ok:
        logger.warning("loaded a checkpoint partially:\n%s", report)
    return report


def guess_model(state: Mapping[str, torch.Tensor]) -> str:
    """Name the registered model whose layout matches ``state`` exactly, e.g. "the file holds a vov3d_l", or ""."""
    from vov3d.models.registry import create_model, list_models

    projection = state.get(CLASSIFIER_PREFIX + "weight")
    if projection is None or projection.dim() != 2:
        return ""
    layout = {k: tuple(v.shape) for k, v in state.items()}
    for name in list_models():
        with torch.device("meta"):
            candidate = create_model(name, num_classes=projection.shape[0])
        if {k: tuple(v.shape) for k, v in candidate.state_dict().items()} == layout:
            return f"the file holds a {name} with {projection.shape[0]} classes"
    return ""


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    epoch: int | None = None,
    cfg: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a PySlowFast-style checkpoint atomically (temporary file, fsync, rename).

    ``model_state`` has no DDP prefix; ``epoch`` is the 0-based index of the finished epoch and
    ``cfg`` the YAML dump of the config, as in the original. ``extra`` adds keys (tensors, numbers,
    strings, lists and dicts of them) that ``torch.load(weights_only=True)`` can read.
    """
    path = Path(path)
    target = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    obj: dict[str, Any] = {"model_state": target.state_dict()}
    if optimizer is not None:
        obj["optimizer_state"] = optimizer.state_dict()
    if epoch is not None:
        obj["epoch"] = int(epoch)
    if cfg is not None:
        obj["cfg"] = cfg
    obj.update(extra or {})
    with atomic_write(path) as f:
        torch.save(obj, f)
    return path
