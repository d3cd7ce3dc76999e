"""Helpers shared by the benchmark scripts: what ran where, and robust timing."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Callable

import torch

from vov3d.accel.allocator import describe_allocator


def describe_runtime() -> str:
    """One line: torch version, device, threads, CPU capability and allocator (as ``vov3d.accel.allocator`` sees it)."""
    cpu = platform.processor() or platform.machine()
    return (
        f"torch {torch.__version__}, {os.cpu_count()} CPUs ({cpu}, {torch.backends.cpu.get_cpu_capability()}), "
        f"{torch.get_num_threads()} threads, allocator: {describe_allocator()}"
    )


def time_calls(fn: Callable[[], object], warmup: int = 1, iters: int = 3, min_seconds: float = 0.0) -> list[float]:
    """Wall times of ``fn()`` in seconds, after ``warmup`` calls: at least ``iters`` calls, and calls for at
    least ``min_seconds``."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def time_call(fn: Callable[[], object], warmup: int = 1, iters: int = 3, min_seconds: float = 0.0) -> float:
    """Median wall time of ``fn()`` in seconds (``time_calls``)."""
    return statistics.median(time_calls(fn, warmup, iters, min_seconds))


def model_benchmark_parser(
    description: str, models: list[str], batch_sizes: list[int], size: int = 224, iters: int = 3
) -> argparse.ArgumentParser:
    """A parser with the arguments every model benchmark takes: models, batch sizes, clip shape, iterations."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", nargs="+", default=models)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=batch_sizes)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=size)
    parser.add_argument("--iters", type=int, default=iters, help="timed iterations per measurement (median)")
    return parser
