"""ModelEma against a hand computation; buffers copied; state_dict round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vov3d.engine.ema import ModelEma


def _model() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        model[0].bias.copy_(torch.tensor([0.5, -0.5]))
    return model


def test_update_by_hand():
    model = _model()
    ema = ModelEma(model, decay=0.9)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[2.0, 0.0], [3.0, 14.0]]))
        model[0].bias.fill_(1.5)
    model.train()
    model(torch.tensor([[1.0, 2.0], [3.0, 5.0]]))  # changes BN running stats and its counter
    ema.update(model)
    # 0.9 * old + 0.1 * new, written out.
    expected_weight = torch.tensor([[0.9 * 1 + 0.1 * 2, 0.9 * 2 + 0.0], [3.0, 0.9 * 4 + 0.1 * 14]])
    torch.testing.assert_close(ema.module[0].weight, expected_weight)
    torch.testing.assert_close(ema.module[0].bias, torch.tensor([0.9 * 0.5 + 0.15, 0.9 * -0.5 + 0.15]))
    # Buffers are copied, not averaged.
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)
    assert torch.equal(ema.module[1].running_var, model[1].running_var)
    assert int(ema.module[1].num_batches_tracked) == 1
    # A second update compounds.
    ema.update(model)
    torch.testing.assert_close(ema.module[0].weight[0, 0], torch.tensor(0.9 * 1.1 + 0.1 * 2))
    # The EMA copy is independent of the model.
    assert ema.module[0].weight.data_ptr() != model[0].weight.data_ptr()


def test_decay_edges_and_wrappers():
    model = _model()
    frozen = ModelEma(nn.DataParallel(model), decay=1.0)  # wrappers are unwrapped
    follow = ModelEma(model, decay=0.0)
    with torch.no_grad():
        model[0].weight.mul_(3)
    frozen.update(nn.DataParallel(model))
    follow.update(model)
    torch.testing.assert_close(frozen.module[0].weight, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    torch.testing.assert_close(follow.module[0].weight, model[0].weight)


def test_state_dict_round_trip(tmp_path):
    model = _model()
    ema = ModelEma(model, decay=0.5)
    with torch.no_grad():
        model[0].weight.add_(1)
    ema.update(model)
    path = tmp_path / "ema.pyth"
    torch.save(ema.state_dict(), path)
    other = ModelEma(_model(), decay=0.5)
    other.load_state_dict(torch.load(path, weights_only=True))
    for key, value in ema.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


def test_errors():
    with pytest.raises(ValueError, match=r"EMA decay must be in \[0, 1\]"):
        ModelEma(_model(), decay=1.5)
    ema = ModelEma(_model())
    with pytest.raises(ValueError, match="does not match its EMA copy"):
        ema.update(nn.Sequential(nn.Linear(2, 2)))
