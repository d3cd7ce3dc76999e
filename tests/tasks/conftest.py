"""Shared fixtures of the task tests (predict, export, explain, bench, pretrained)."""

from __future__ import annotations

import pytest
import torch

import vov3d.pretrained as pretrained


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One compute thread: the machine's two cores are shared, and OpenMP pools spin when oversubscribed."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A private TORCH_HOME and a folder standing in for the download server (VOV3D_PRETRAINED_URL_PREFIX)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    server = tmp_path / "server"
    server.mkdir()
    monkeypatch.setenv(pretrained.URL_PREFIX_ENV, server.as_uri())
    return server
