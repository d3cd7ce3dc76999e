"""The compiled backend: the channels-last network compiled ahead of time by AOTInductor, cached on disk.

``torch.export`` + ``aoti_compile_and_package`` with inductor's ``freezing`` (weights become constants, packed
for oneDNN; elementwise ops fused into single loops). Each package is cached per input shape, so only the first
call with a new shape, ever, pays the compilation; see ``docs/performance.md``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import warnings
from pathlib import Path

import torch
from torch import nn

from vov3d.accel import channels_last
from vov3d.accel.channels_last import ChannelsLastNetwork
from vov3d.ops.library import default_cache_dir
from vov3d.utils.atomic import atomic_output_path

# Bump when the way ``CompiledRunner`` exports or compiles changes (options, wrapper): it is part of
# every package's key, with the source of ``channels_last.py`` (which defines the graph).
COMPILE_VERSION = 1
_INDUCTOR_CONFIGS = {"freezing": True}


def _source_digest() -> str:
    """A digest of what defines the compiled graph: ``channels_last.py`` and the compile options."""
    h = hashlib.sha256(Path(channels_last.__file__).read_bytes())
    h.update(f"{COMPILE_VERSION}:{sorted(_INDUCTOR_CONFIGS.items())}".encode())
    return h.hexdigest()


def weights_digest(module: nn.Module) -> str:
    """A digest of ``module``'s structure and every parameter and buffer (names, shapes, dtypes, values)."""
    h = hashlib.sha256(repr(module).encode())
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class _ForwardNTHWC(nn.Module):
    def __init__(self, network: ChannelsLastNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.forward_nthwc(x)


class CompiledRunner:
    """Runs a ``ChannelsLastNetwork`` compiled ahead of time by AOTInductor, one package per input shape.

    The package (``<cache_dir>/aoti/<key>.pt2``) is keyed by the weights (``weights_digest``), the input
    shape and dtype, the torch version, the CPU's instruction set and the source of the graph; it is
    compiled on the first call with a new shape and loaded in milliseconds afterwards, in this process or
    any later one. Where compiling fails (no C++ compiler, an unsupported op) it warns once per shape and runs
    the network eagerly.
    """

    def __init__(self, network: ChannelsLastNetwork, cache_dir: str | os.PathLike | None = None) -> None:
        self.module = _ForwardNTHWC(network).eval()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._weights = weights_digest(network)
        self._runners: dict[tuple, object] = {}
        self.compiled_shapes: list[tuple] = []  # shapes compiled (not loaded) by this runner

    def package_path(self, x: torch.Tensor) -> Path:
        key = "|".join(
            [
                torch.__version__,
                str(torch.backends.cpu.get_cpu_capability()),
                platform.machine(),
                _source_digest(),
                self._weights,
                str(tuple(x.shape)),
                str(x.dtype),
            ]
        )
        return self.cache_dir / "aoti" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pt2"

    def _load_or_compile(self, x: torch.Tensor):  # noqa: ANN202
        path = self.package_path(x)
        if not path.exists():
            # atomic: a concurrent reader sees a whole package or none
            with torch.no_grad(), atomic_output_path(path) as tmp:
                exported = torch.export.export(self.module, (x,))
                torch._inductor.aoti_compile_and_package(
                    exported, package_path=str(tmp), inductor_configs=dict(_INDUCTOR_CONFIGS)
                )
            self.compiled_shapes.append(tuple(x.shape))
        return torch._inductor.aoti_load_package(str(path))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype)
        runner = self._runners.get(key)
        if runner is None:
            try:
                runner = self._load_or_compile(x)
            except Exception as exc:  # no C++ compiler, an unsupported op, a broken package: run eagerly
                warnings.warn(f"vov3d: compiling for input {tuple(x.shape)} failed ({exc!r}); running eagerly",
                              stacklevel=2)
                runner = self.module
            self._runners[key] = runner
        return runner(x)
