"""Fixtures of the distributed tests."""

from __future__ import annotations

import pytest

from dist_helpers import Processes


@pytest.fixture
def processes():
    """Start OS processes (each in its own process group); all are killed when the test ends."""
    procs = Processes()
    try:
        yield procs
    finally:
        procs.kill_all()
