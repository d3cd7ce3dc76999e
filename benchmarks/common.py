"""Helpers shared by the benchmark scripts: what ran where, and robust timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import torch

from vov3d.allocator import describe_allocator


def describe_runtime() -> str:
    """One line: torch version, device, threads, CPU capability and allocator (as ``vov3d.allocator`` sees it)."""
    cpu = platform.processor() or platform.machine()
    return (
        f"torch {torch.__version__}, {os.cpu_count()} CPUs ({cpu}, {torch.backends.cpu.get_cpu_capability()}), "
        f"{torch.get_num_threads()} threads, allocator: {describe_allocator()}"
    )


def time_call(fn: Callable[[], object], warmup: int = 1, iters: int = 3, min_seconds: float = 0.0) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` calls (at least ``iters`` timed calls)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
