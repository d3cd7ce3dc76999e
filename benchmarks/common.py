"""Helpers shared by the benchmark scripts: what ran where, and robust timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import torch


def allocator() -> str:
    """The memory allocator in use: one named in LD_PRELOAD (jemalloc, tcmalloc, ...), else glibc malloc."""
    preload = os.environ.get("LD_PRELOAD", "")
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if name in preload:
            conf = os.environ.get("MALLOC_CONF", "") if name == "jemalloc" else ""
            return f"{name} ({preload}{', MALLOC_CONF=' + conf if conf else ''})"
    return "glibc malloc"


def describe_runtime() -> str:
    """One line: torch version, device, threads, CPU capability and allocator."""
    cpu = platform.processor() or platform.machine()
    return (
        f"torch {torch.__version__}, {os.cpu_count()} CPUs ({cpu}, {torch.backends.cpu.get_cpu_capability()}), "
        f"{torch.get_num_threads()} threads, allocator: {allocator()}"
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
