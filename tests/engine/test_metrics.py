"""Top-k correct counts and errors (spec §9.6) on hand-made scores."""

from __future__ import annotations

import pytest
import torch

from vov3d.engine.metrics import topk_correct, topk_errors

SCORES = torch.tensor(
    [
        [0.1, 0.5, 0.2, 0.15, 0.05, 0.0],  # order 1,2,3,0,4,5
        [0.3, 0.1, 0.0, 0.2, 0.25, 0.15],  # order 0,4,3,5,1,2
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],  # order 5,4,3,2,1,0
        [0.9, 0.02, 0.02, 0.02, 0.02, 0.04],  # order 0,5,...
    ]
)


def test_counts_by_hand():
    labels = torch.tensor([1, 3, 0, 5])
    # row 0: label rank 1 -> top1, top2. row 1: rank 3 -> top3+. row 2: rank 6 -> none. row 3: rank 2.
    assert topk_correct(SCORES, labels, ks=(1, 2, 3, 5)) == [1, 2, 3, 3]
    assert topk_correct(SCORES, labels) == [1, 3]


def test_errors_in_percent():
    labels = torch.tensor([1, 3, 0, 5])
    top1, top5 = topk_errors(SCORES, labels)
    assert top1 == pytest.approx((1 - 1 / 4) * 100)
    assert top5 == pytest.approx((1 - 3 / 4) * 100)
    assert topk_errors(SCORES, torch.tensor([1, 0, 5, 0]), ks=(1,)) == [0.0]


def test_ties_follow_torch_topk():
    scores = torch.tensor([[0.25, 0.25, 0.25, 0.25]] * 4)
    labels = torch.tensor([0, 1, 2, 3])
    _, top = torch.topk(scores, 2, dim=1)
    expected = [int((top[:, :1] == labels[:, None]).sum()), int((top == labels[:, None]).sum())]
    assert topk_correct(scores, labels, ks=(1, 2)) == expected


def test_k_beyond_the_classes_counts_every_row():
    scores = torch.tensor([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert topk_correct(scores, torch.tensor([0, 1, 0]), ks=(1, 5)) == [0, 3]
    assert topk_errors(scores, torch.tensor([0, 1, 0]), ks=(1, 5)) == [100.0, 0.0]


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"scores must be \(N, C\)"):
        topk_correct(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must be \(N,\) with N=4"):
        topk_correct(SCORES, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="empty batch"):
        topk_errors(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="positive"):
        topk_correct(SCORES, torch.zeros(4, dtype=torch.long), ks=(0,))
