"""Shared fixtures of the task tests (predict, export, explain, bench, pretrained)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One compute thread: the machine's two cores are shared, and OpenMP pools spin when oversubscribed."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
