"""Top-k correct counts and errors of the original's ``utils/metrics.py`` (spec §9.6)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """How many rows of ``scores`` (N, C) have their label among their ``k`` highest scores, per k.

    Correctness comes from ``torch.topk`` (spec §9.6), so ties are broken as ``torch.topk`` breaks
    them. A ``k`` larger than the number of classes counts every row as correct (the original would
    fail; small synthetic datasets have fewer than 5 classes).
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be (N, C), got shape {tuple(scores.shape)}")
    if labels.dim() != 1 or labels.shape[0] != scores.shape[0]:
        raise ValueError(f"labels must be (N,) with N={scores.shape[0]}, got shape {tuple(labels.shape)}")
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    num_classes = scores.shape[1]
    max_k = min(max(ks), num_classes)
    _, top = torch.topk(scores, max_k, dim=1, largest=True, sorted=True)  # (N, max_k)
    hits = top.eq(labels.to(top.device).view(-1, 1))
    return [int(hits[:, : min(k, num_classes)].sum().item()) for k in ks]


def topk_errors(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[float]:
    """Top-k error in percent, ``(1 - correct / N) * 100`` per k (spec §9.6)."""
    n = scores.shape[0] if scores.dim() >= 1 else 0
    if n == 0:
        raise ValueError("top-k errors of an empty batch are undefined")
    return [(1.0 - c / n) * 100.0 for c in topk_correct(scores, labels, ks)]
