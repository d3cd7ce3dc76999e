"""Cross-entropy with label smoothing, class ids and soft targets, against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from vov3d.engine.losses import build_loss

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.5]])


def _log_softmax_row(row: list[float]) -> list[float]:
    log_z = math.log(sum(math.exp(v) for v in row))
    return [v - log_z for v in row]


LOGP = [_log_softmax_row(r) for r in LOGITS.tolist()]


def test_plain_cross_entropy():
    expected = -(LOGP[0][0] + LOGP[1][2]) / 2
    assert build_loss()(LOGITS, torch.tensor([0, 2])).item() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_with_class_ids():
    s = 0.1
    expected = 0.0
    for logp, label in zip(LOGP, (0, 2)):
        target = [s / 3 + (1 - s) * (c == label) for c in range(3)]
        expected += -sum(t * lp for t, lp in zip(target, logp))
    assert build_loss(s)(LOGITS, torch.tensor([0, 2])).item() == pytest.approx(expected / 2, rel=1e-6)


def test_soft_targets_are_used_as_given():
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.1, 0.1, 0.8]])
    expected = -sum(t * lp for row_t, row_lp in zip(soft.tolist(), LOGP) for t, lp in zip(row_t, row_lp)) / 2
    for s in (0.0, 0.2):  # smoothing is not applied a second time to soft targets
        assert build_loss(s)(LOGITS, soft).item() == pytest.approx(expected, rel=1e-6)
    # One-hot soft targets equal class ids.
    onehot = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    assert build_loss()(LOGITS, onehot).item() == pytest.approx(build_loss()(LOGITS, torch.tensor([0, 2])).item(), rel=1e-6)


def test_gradients_flow():
    logits = LOGITS.clone().requires_grad_(True)
    build_loss(0.1)(logits, torch.tensor([0, 2])).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"label smoothing must be in \[0, 1\)"):
        build_loss(1.0)
    with pytest.raises(ValueError, match="3 class ids for 2 rows"):
        build_loss()(LOGITS, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"soft targets \(2, 3\)"):
        build_loss()(LOGITS, torch.zeros(2, 4))
