"""Shared test helpers."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True, scope="session")
def private_cache_dir(tmp_path_factory):
    """Built kernels and compiled models go to a temporary folder, not the user's ~/.cache/vov3d."""
    before = os.environ.get("VOV3D_CACHE_DIR")
    os.environ["VOV3D_CACHE_DIR"] = str(tmp_path_factory.mktemp("vov3d_cache"))
    yield
    if before is None:
        os.environ.pop("VOV3D_CACHE_DIR", None)
    else:
        os.environ["VOV3D_CACHE_DIR"] = before


def calibrate_batchnorms(model: nn.Module, shape=(2, 3, 4, 64, 64), steps: int = 2, seed: int = 0) -> nn.Module:
    """Give every BN realistic statistics and non-zero affine parameters, as after training.

    The zero-initialised final BNs would otherwise switch every residual branch off, and tests of
    numerics would not see those branches at all. A block's final BN gets a small scale, as trained
    residual networks have, so that activations do not grow with depth.
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.momentum = None  # cumulative average of the batches below
            m.reset_running_stats()
            with torch.no_grad():
                low, high = (0.1, 0.3) if getattr(m, "transform_final_bn", False) else (0.75, 1.25)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * (high - low) + low)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(shape, generator=g, dtype=next(model.parameters()).dtype))
    return model.eval()
