"""vov3d's kernel library: compiled from ``csrc/`` on first use, cached on disk, loaded once per process.

One shared library holds both kernel sets: ``csrc/inference_kernels.c`` (wrapped by
``vov3d.ops.inference_kernels``) and ``csrc/training_kernels.c`` (wrapped by ``vov3d.ops.training_kernels``);
both include ``csrc/vector.h``. It is compiled with the system C compiler (``$CC``, else ``cc``/``gcc``/``clang``;
``-O3 -march=native -fopenmp``) into ``<cache_dir>/kernels/<key>.so``, keyed by every source, the compiler's
version, the flags and the CPU (``vov3d.utils.cpu_features.cpu_id``), in about a second; later processes load
it. ``library_unavailable()`` says why it cannot be built here (no compiler, a missing source), and
``load_library()`` returns None (one warning) where it cannot. The kernels use the OpenMP runtime torch
already loaded (GNU's in the PyPI wheels; under a torch built with Intel's OpenMP both runtimes load: still
correct, but their thread pools may contend).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import threading
import warnings
from pathlib import Path

from vov3d.utils.atomic import atomic_output_path
from vov3d.utils.cpu_features import cpu_id

CSRC = Path(__file__).with_name("csrc")
SOURCES = (CSRC / "inference_kernels.c", CSRC / "training_kernels.c")
HEADERS = (CSRC / "vector.h",)
# gnu11, not c11: GCC's vector extensions, and FMA contraction (ISO C mode turns it off).
CFLAGS = ("-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=gnu11", "-Wno-psabi")

MAX_TAPS = 16  # temporal taps the kernels accept

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}


def default_cache_dir() -> Path:
    """Where built kernels and compiled models are cached: ``$VOV3D_CACHE_DIR``, else ``$XDG_CACHE_HOME/vov3d``
    (``~/.cache/vov3d``)."""
    if os.environ.get("VOV3D_CACHE_DIR"):
        return Path(os.environ["VOV3D_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vov3d"


def find_compiler() -> str | None:
    """The C compiler the library is built with: ``$CC``, else the first of ``cc``, ``gcc``, ``clang`` found."""
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def library_unavailable() -> str | None:
    """Why the library cannot be built here (one sentence), or None if it can."""
    missing = [f.name for f in SOURCES + HEADERS if not f.is_file()]
    if missing:
        return f"the kernel sources {', '.join(missing)} are missing from {CSRC} (an incomplete installation)"
    if find_compiler() is None:
        return "no C compiler found (set $CC, or install gcc)"
    return None


def library_path(cache_dir: Path, cc: str) -> Path:
    """Where the library built by ``cc`` from the current sources for this CPU is cached."""
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout
    key = hashlib.sha256(
        b"|".join([*(f.read_bytes() for f in SOURCES + HEADERS), version.encode(), " ".join(CFLAGS).encode(),
                   cpu_id().encode()])
    ).hexdigest()[:32]
    return cache_dir / "kernels" / f"vov3d_kernels_{key}.so"


class LayerWeights(ctypes.Structure):
    """One D(2+1)D layer's weights as ``vov3d_d2plus1d_layer`` reads them (``csrc/inference_kernels.c``'s
    ``vov3d_layer``): pointers into the tensors it keeps alive (``tensors``). Build it with
    ``vov3d.ops.inference_kernels.layer_weights``."""

    _fields_ = [
        ("wa", ctypes.c_void_p), ("ba", ctypes.c_void_p), ("lda", ctypes.c_long), ("a_bf16", ctypes.c_int),
        ("wt", ctypes.c_void_p), ("ws", ctypes.c_void_p), ("bias", ctypes.c_void_p),
        ("kt", ctypes.c_int), ("stride", ctypes.c_int),
        ("se_w1", ctypes.c_void_p), ("se_b1", ctypes.c_void_p), ("se_w2", ctypes.c_void_p), ("se_b2", ctypes.c_void_p),
        ("cse", ctypes.c_int),
        ("wc", ctypes.c_void_p), ("bc", ctypes.c_void_p), ("ldc", ctypes.c_long), ("c_bf16", ctypes.c_int),
        ("cin", ctypes.c_int), ("d", ctypes.c_int), ("cout", ctypes.c_int),
        ("has_residual", ctypes.c_int), ("silu_out", ctypes.c_int), ("dw_bf16", ctypes.c_int),
        ("in_bf16", ctypes.c_int), ("out_bf16", ctypes.c_int),
    ]


def _declare(lib: ctypes.CDLL) -> None:
    """The C signatures of every kernel (argument types; every kernel returns void but ``vov3d_has_bf16``)."""
    i, p, lng = ctypes.c_int, ctypes.c_void_p, ctypes.c_long
    signatures = {
        # inference_kernels.c
        "depthwise_st": [p, p, i, p, p, p, p, i, i, i, i, i, i, i, i, i],
        "d2plus1d": [p, i, p, i, lng, p, p, i, p, p, p, p, i, i, i, i, i, i, i, i],
        "gemm": [p, p, p, i, lng, lng, lng, p, i, lng, i, p, p, p, lng, i, p, lng, i],
        "stem": [p, i, i, i, i, p, lng, i, p, i, p, p, i, i, i],
        "se_gate": [p, i, i, ctypes.c_float, p, p, i, p, p, p],
        "d2plus1d_layer": [ctypes.POINTER(LayerWeights), p, i, i, i, lng, i, p],
        # training_kernels.c
        "channel_sums": [p, lng, i, p, p, p],
        "affine_act": [p, p, p, lng, p, lng, i, i, p],
        "bn_act_bwd_sums": [p, p, p, p, p, p, lng, i, i, p, p],
        "bn_act_bwd_apply": [p, p, p, p, p, p, p, p, p, lng, i, i, p, p],
        "affine_act_bwd": [p, p, p, p, lng, lng, i, i, p, p, p],
        "temporal_fwd": [p, p, i, i, i, lng, i, p, p, p, p],
        "temporal_bwd": [p, p, p, p, p, p, p, i, i, i, lng, i, p, p],
        "gemm_tn": [p, p, lng, i, i, p],
        "bn_relu_dw3x3_fwd": [p, p, p, p, lng, i, i, i, i, p],
        "bn_relu_dw3x3_bwd": [p, p, p, p, p, p, lng, i, i, i, i, p, p, p, p],
    }
    for name, argtypes in signatures.items():
        fn = getattr(lib, f"vov3d_{name}")
        fn.argtypes = argtypes
        fn.restype = None
    lib.vov3d_has_bf16.argtypes = []
    lib.vov3d_has_bf16.restype = i


def _build(cache_dir: Path) -> ctypes.CDLL:
    reason = library_unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    cc = find_compiler()
    assert cc is not None  # library_unavailable checked it
    path = library_path(cache_dir, cc)
    if not path.exists():
        sources = [str(f) for f in SOURCES]
        with atomic_output_path(path) as tmp:  # a concurrent process sees a whole library or none
            result = subprocess.run([cc, *CFLAGS, *sources, "-o", str(tmp), "-lm"], capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"{cc} failed on {' '.join(sources)}:\n{result.stderr.strip()}")
    lib = ctypes.CDLL(str(path))
    lib.__deepcopy__ = lambda memo: lib  # one library per process: modules holding it can be deep-copied
    _declare(lib)
    return lib


def load_library(cache_dir: str | os.PathLike | None = None, warn: bool = True) -> ctypes.CDLL | None:
    """The kernel library, built into ``cache_dir`` (default ``default_cache_dir()``) if needed; None where it
    cannot be built (with one warning that says why, unless ``warn`` is False; ``library_error`` tells it again)."""
    key = str(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    with _lock:
        if key not in _loaded:
            try:
                _loaded[key] = _build(Path(key))
            except (OSError, RuntimeError) as exc:
                _errors[key] = str(exc)
                if warn:
                    warnings.warn(f"vov3d: kernel library unavailable ({exc}); using torch ops instead", stacklevel=2)
                _loaded[key] = None
        return _loaded[key]


_errors: dict[str, str] = {}


def library_error(cache_dir: str | os.PathLike | None = None) -> str | None:
    """Why ``load_library(cache_dir)`` returned None (its exception's message), or None."""
    return _errors.get(str(Path(cache_dir) if cache_dir is not None else default_cache_dir()))


def has_bf16(lib: ctypes.CDLL) -> bool:
    """Whether ``lib`` has the bfloat16 products (it was built for a CPU with AVX512_BF16, BW and VL)."""
    try:
        return lib._vov3d_has_bf16  # asked once per library: every bfloat16 gemm call checks it
    except AttributeError:
        lib._vov3d_has_bf16 = bool(lib.vov3d_has_bf16())
        return lib._vov3d_has_bf16
