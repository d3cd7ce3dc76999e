"""Training curves and the test confusion matrix as PNG files (issue 16: observability).

Drawn with matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``), so the
user's pyplot backend and global state are left alone; files are replaced atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vov3d.utils.atomic import atomic_write

DPI = 100


def _save(figure: Figure, path: str | os.PathLike[str]) -> None:
    FigureCanvasAgg(figure)
    with atomic_write(path, "wb") as f:
        figure.savefig(f, format="png", dpi=DPI)


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, entry in enumerate(history):
        value = entry.get(key)
        if value is None or not math.isfinite(float(value)):
            continue
        xs.append(float(entry.get("epoch", i + 1)))
        ys.append(float(value))
    return xs, ys


ITERATION_COLOUR = "tab:gray"


def plot_training_curves(history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str],
                         iterations: Sequence[Mapping[str, Any]] = ()) -> None:
    """One PNG with three panels per epoch: loss, top-1 (train and val), learning rate.

    ``history`` has one dict per epoch with ``epoch`` (1-based; the position when absent),
    ``loss``, ``lr``, ``train_top1_err`` and, on evaluated epochs, ``val_top1_err`` (errors in %,
    spec §9.6); ``train_top1_acc``/``val_top1_acc`` are drawn instead when given. Missing or
    non-finite values are skipped, so validation points appear only where it ran.
    ``iterations``: the same keys (``epoch`` fractional: 1.0 is the end of the first epoch) logged
    every LOG_PERIOD iterations, drawn as thin grey lines under the epochs' points, so that a run of
    few epochs still shows its course.
    """
    if not history:
        raise ValueError("no epochs to plot: the training history is empty")
    figure = Figure(figsize=(12, 3.6))
    loss_ax, top1_ax, lr_ax = figure.subplots(1, 3)
    metric = "acc" if any(f"{s}_top1_acc" in e for e in history for s in ("train", "val")) else "err"
    for ax, key in ((loss_ax, "loss"), (top1_ax, f"train_top1_{metric}"), (lr_ax, "lr")):
        xs, ys = _series(iterations, key)
        if xs:
            ax.plot(xs, ys, linewidth=0.8, color=ITERATION_COLOUR, label="train, by iteration")
    xs, ys = _series(history, "loss")
    loss_ax.plot(xs, ys, marker="o", markersize=3, color="tab:blue", label="train")
    loss_ax.set(title="loss", xlabel="epoch")
    if len(loss_ax.lines) > 1:
        loss_ax.legend()
    for split, color in (("train", "tab:blue"), ("val", "tab:orange")):
        xs, ys = _series(history, f"{split}_top1_{metric}")
        if xs:
            top1_ax.plot(xs, ys, marker="o", markersize=3, color=color, label=split)
    top1_ax.set(title=f"top-1 {'accuracy' if metric == 'acc' else 'error'} (%)", xlabel="epoch")
    if top1_ax.lines:
        top1_ax.legend()
    xs, ys = _series(history, "lr")
    lr_ax.plot(xs, ys, marker="o", markersize=3, color="tab:green")
    lr_ax.set(title="learning rate", xlabel="epoch")
    for ax in (loss_ax, top1_ax, lr_ax):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    _save(figure, path)


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (num_classes, num_classes) int64: row = true label, column = predicted class."""
    preds, labels = torch.as_tensor(preds).flatten().long().cpu(), torch.as_tensor(labels).flatten().long().cpu()
    if preds.shape != labels.shape:
        raise ValueError(f"{preds.numel()} predictions for {labels.numel()} labels")
    for name, values in (("prediction", preds), ("label", labels)):
        if values.numel() and (int(values.min()) < 0 or int(values.max()) >= num_classes):
            raise ValueError(f"a {name} is outside 0..{num_classes - 1}: {values.min().item()}..{values.max().item()}")
    flat = torch.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return flat.view(num_classes, num_classes)


def plot_confusion_matrix(
    matrix: torch.Tensor, class_names: Sequence[str] | None, path: str | os.PathLike[str]
) -> None:
    """A PNG of the row-normalised confusion matrix (each true class sums to 1), with the overall accuracy.

    Class names label the axes up to 40 classes (beyond that the axes show class ids); up to 15
    classes each cell also shows its count.
    """
    matrix = torch.as_tensor(matrix).to(torch.float64).cpu()
    n = matrix.shape[0]
    if matrix.dim() != 2 or matrix.shape[1] != n:
        raise ValueError(f"a confusion matrix must be square, got shape {tuple(matrix.shape)}")
    if class_names is not None and len(class_names) != n:
        raise ValueError(f"{len(class_names)} class names for a {n}x{n} confusion matrix")
    rows = matrix.sum(dim=1, keepdim=True)
    normalised = torch.where(rows > 0, matrix / rows.clamp(min=1), torch.zeros_like(matrix))
    total = float(matrix.sum())
    accuracy = 100.0 * float(matrix.diagonal().sum()) / total if total else 0.0
    side = min(16.0, max(5.0, 0.3 * n + 2.0))
    figure = Figure(figsize=(side + 1.5, side))
    ax = figure.subplots()
    image = ax.imshow(normalised.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set(xlabel="predicted class", ylabel="true class", title=f"confusion matrix ({int(total)} videos, top-1 {accuracy:.2f} %)")
    if n <= 40:
        labels = list(class_names) if class_names is not None else [str(i) for i in range(n)]
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
    if n <= 15:
        for (row, col), count in zip(((r, c) for r in range(n) for c in range(n)), matrix.flatten().tolist()):
            colour = "black" if normalised[row, col] > 0.5 else "white"
            ax.text(col, row, f"{int(count)}", ha="center", va="center", color=colour, fontsize=8)
    figure.tight_layout()
    _save(figure, path)
