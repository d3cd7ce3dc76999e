"""What this CPU can do, read once from ``/proc/cpuinfo`` (Linux; elsewhere nothing is known).

The kernel library is keyed by ``cpu_id()`` (it is compiled with ``-march=native``), and the bfloat16
paths ask ``has_bf16_arithmetic()`` before they are chosen (spec §10: bfloat16 inference).
"""

from __future__ import annotations

import functools
import hashlib
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@functools.lru_cache(maxsize=1)
def _flags_line() -> str | None:
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return None


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of the first CPU (``avx2``, ``avx512_bf16``, ...); empty where unknown."""
    line = _flags_line()
    return frozenset(line.partition(":")[2].split()) if line else frozenset()


def has_avx512() -> bool:
    """Whether this CPU has AVX-512 (``avx512f``), the vector width vov3d's kernels are written for."""
    return "avx512f" in cpu_flags()


def has_bf16_arithmetic() -> bool:
    """Whether this CPU has bfloat16 arithmetic (AVX512_BF16 or AMX) that oneDNN and vov3d's kernels use."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_id() -> str:
    """A short string that changes when the instruction set does: a digest of the flags, else the processor name."""
    line = _flags_line()
    if line is not None:
        return hashlib.sha256(line.encode()).hexdigest()[:16]
    return platform.processor() or platform.machine()
