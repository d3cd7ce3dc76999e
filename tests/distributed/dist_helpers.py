"""Helpers of the distributed tests: free local ports, and OS processes that never outlive a test.

(A module of its own, not conftest.py: several conftest modules share that name under pytest.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent / "scripts"
REPO = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Start commands in their own process groups; every group is killed when the test ends."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        proc = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=full_env, cwd=REPO, start_new_session=True)
        self.started.append(proc)
        return proc

    @staticmethod
    def finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str, float]:
        """Wait up to ``timeout`` s: (status, output, seconds waited); a process still running fails the test."""
        start = time.monotonic()
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            pytest.fail(f"{proc.args} still ran after {timeout} s; output:\n{out}")
        return proc.returncode, out, time.monotonic() - start

    def kill_all(self) -> None:
        for proc in self.started:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if proc.poll() is None:
                proc.wait(10)
