"""Precise BN (spec §9.3) against statistics computed directly in the test."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vov3d.engine.precise_bn import update_bn_stats


class _TrainModeProbe(nn.Module):
    """Records the mode it ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return x


def _model(norm: type[nn.Module] = nn.BatchNorm3d) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(2, 3, kernel_size=1, bias=True),
        norm(3),
        nn.ReLU(),
        _TrainModeProbe(),
        nn.Conv3d(3, 3, kernel_size=1, bias=False),
        norm(3, momentum=None),
    )
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.5, 1.5, 2.0]))
        model[1].bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return model


def _batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    # Different batch sizes, so that the weighting by batch size matters.
    return [torch.randn(n, 2, 2, 3, 3, generator=g) * s + s for n, s in ((2, 1.0), (3, 2.0), (1, 0.5), (4, 3.0))]


def _expected(model: nn.Sequential, batches: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-BN (mean, var): batch-size-weighted means of per-batch channel mean and unbiased variance."""
    conv1, bn1, conv2 = model[0], model[1], model[4]
    sums = [[torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)] for _ in range(2)]
    total = 0
    for x in batches:
        x = x.double()
        y1 = F.conv3d(x, conv1.weight.double(), conv1.bias.double())
        m1 = y1.mean(dim=(0, 2, 3, 4))
        v1 = y1.var(dim=(0, 2, 3, 4), unbiased=True)
        biased = y1.var(dim=(0, 2, 3, 4), unbiased=False)
        shape = (1, 3, 1, 1, 1)
        z = (y1 - m1.view(shape)) / torch.sqrt(biased.view(shape) + bn1.eps)
        z = z * bn1.weight.double().view(shape) + bn1.bias.double().view(shape)
        y2 = F.conv3d(torch.relu(z), conv2.weight.double())
        m2, v2 = y2.mean(dim=(0, 2, 3, 4)), y2.var(dim=(0, 2, 3, 4), unbiased=True)
        n = x.shape[0]
        total += n
        for acc, (m, v) in zip(sums, ((m1, v1), (m2, v2))):
            acc[0] += n * m
            acc[1] += n * v
    return [(m / total, v / total) for m, v in sums]


@pytest.mark.parametrize("norm", [nn.BatchNorm3d, nn.SyncBatchNorm], ids=["BatchNorm3d", "SyncBatchNorm"])
def test_against_direct_computation(norm):
    # SyncBatchNorm runs as a plain BN without a process group (torch >= 2.0), so it is tested for real.
    model = _model(norm)
    model.eval()
    batches = _batches()
    expected = _expected(model, batches)
    used = update_bn_stats(model, iter(batches), num_batches=200)
    assert used == 4
    for bn, (mean, var) in zip((model[1], model[5]), expected):
        torch.testing.assert_close(bn.running_mean.double(), mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(bn.running_var.double(), var, rtol=1e-5, atol=1e-6)
    # Collected in train mode, then the eval mode and the momenta are back.
    assert model[3].modes == [True] * 4
    assert not model.training and not model[1].training
    assert model[1].momentum == 0.1 and model[5].momentum is None


def test_only_num_batches_are_drawn():
    model = _model()
    batches = _batches()
    drawn: list[int] = []

    def loader():
        for i, b in enumerate(batches):
            drawn.append(i)
            yield b

    expected = _expected(model, batches[:2])
    assert update_bn_stats(model, loader(), num_batches=2) == 2
    assert drawn == [0, 1]
    torch.testing.assert_close(model[1].running_mean.double(), expected[0][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model[5].running_var.double(), expected[1][1], rtol=1e-5, atol=1e-6)
    assert model.training


def test_no_batches_leaves_statistics():
    model = _model()
    before = [t.clone() for t in (model[1].running_mean, model[1].running_var)]
    assert update_bn_stats(model, iter([]), num_batches=10) == 0
    assert update_bn_stats(model, iter(_batches()), num_batches=0) == 0
    assert torch.equal(model[1].running_mean, before[0]) and torch.equal(model[1].running_var, before[1])
    assert model[1].momentum == 0.1


def test_a_failing_loader_restores_everything():
    model = _model()
    before = (model[1].running_mean.clone(), model[1].running_var.clone())

    def loader():
        yield _batches()[0]
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        update_bn_stats(model, loader(), num_batches=5)
    assert torch.equal(model[1].running_mean, before[0]) and torch.equal(model[1].running_var, before[1])
    assert model[1].momentum == 0.1 and model[5].momentum is None


def test_negative_num_batches():
    with pytest.raises(ValueError, match="NUM_BATCHES_PRECISE"):
        update_bn_stats(_model(), iter(_batches()), num_batches=-1)
