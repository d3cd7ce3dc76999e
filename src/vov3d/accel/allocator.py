"""Keeping freed memory in the process, so that large activations do not fault in fresh pages every call.

glibc's malloc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and returns it to the system on ``free``: a video network at batch 8 allocates activations
of tens to hundreds of MiB, and each call then page-faults all of them in again (measured: millions
of minor faults per forward, more than half of the time; see ``benchmarks/RESULTS.md``).
``keep_freed_memory()`` tells glibc, in-process, to serve every size from its heap and to keep what is
freed (``mallopt``: ``M_MMAP_MAX=0``, ``M_TRIM_THRESHOLD`` and ``M_TOP_PAD`` large), which is what
jemalloc with ``dirty_decay_ms:-1`` gives. ``vov3d.accel.prepare_for_inference`` calls it; where another
allocator is preloaded (jemalloc, tcmalloc, mimalloc) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from pathlib import Path

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

_state: dict[str, bool] = {"kept": False}


_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


def preloaded_allocator() -> str | None:
    """The allocator other than glibc's that this process runs with (jemalloc, tcmalloc, mimalloc), if any.

    Named in ``LD_PRELOAD``, or mapped into the process (``/proc/self/maps``: a preload by another
    file name, or a library linked against one).
    """
    preload = os.environ.get("LD_PRELOAD", "")
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        maps = ""
    for name in _ALLOCATORS:
        if name in preload or name in maps:
            return name
    return None


def keep_freed_memory(top_pad_mib: int = 64) -> bool:
    """Make glibc malloc keep freed memory for reuse (see the module docstring). Idempotent.

    Returns True when the setting is in effect (now or from an earlier call), False where it does not
    apply (not Linux/glibc, or another allocator is preloaded). Memory freed by the process stays
    mapped for its lifetime: the peak of what it allocated.
    """
    if _state["kept"]:
        return True
    if platform.system() != "Linux" or preloaded_allocator() is not None or not platform.libc_ver()[0] == "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_MAX, 0) == 1
    ok = ok and mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    ok = ok and mallopt(M_TOP_PAD, top_pad_mib * 2**20) == 1
    _state["kept"] = ok
    return ok


def describe_allocator() -> str:
    """One phrase: which allocator runs, and whether freed memory is kept."""
    name = preloaded_allocator()
    if name is not None:
        conf = os.environ.get("MALLOC_CONF", "") if name == "jemalloc" else ""
        return f"{name}{' (MALLOC_CONF=' + conf + ')' if conf else ''}"
    if _state["kept"]:
        return "glibc malloc, freed memory kept (vov3d.accel.allocator.keep_freed_memory: mmap off, no trim)"
    return "glibc malloc (defaults)"
