"""The training loss: cross-entropy on logits (spec §9.1), with optional label smoothing (ours, off by default)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropy(nn.Module):
    """Mean cross-entropy of logits (N, C) against class ids (N,) or soft targets (N, C).

    With class ids, ``label_smoothing`` ``s`` replaces the one-hot target by ``(1 - s) * onehot + s / C``
    (as ``torch.nn.CrossEntropyLoss``); ``s = 0`` is the original's plain ``nn.CrossEntropyLoss``
    (spec §9.1). Soft targets (from mixup/cutmix, which already smooths them) are used as given:
    the loss is ``mean_n(-sum_c target[n, c] * log_softmax(logits)[n, c])``.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label smoothing must be in [0, 1), got {label_smoothing} (SOLVER.LABEL_SMOOTHING)")
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.dim() != 2:
            raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
        if target.dim() == 1 and not target.is_floating_point():
            if target.shape[0] != logits.shape[0]:
                raise ValueError(f"{target.shape[0]} class ids for {logits.shape[0]} rows of logits")
            return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        if target.shape != logits.shape:
            raise ValueError(
                f"target must be class ids (N,) or soft targets {tuple(logits.shape)}, got {tuple(target.shape)} {target.dtype}"
            )
        return -(target.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"


def build_loss(label_smoothing: float = 0.0) -> CrossEntropy:
    """The training loss, a callable ``(logits, target) -> scalar`` (spec §9.1; smoothing is ours)."""
    return CrossEntropy(label_smoothing)
