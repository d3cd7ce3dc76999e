"""Preparing a model for fast inference: BN folding, then vov3d's fused CPU kernels, a CPU-friendly
layout or compilation.

Every BatchNorm of VoV3D and X3D follows a convolution, possibly after a depthwise one (stem:
``conv_xy -> conv -> bn``; D(2+1)D: ``b1 -> b2 -> b_bn``), so in eval mode each BN is an affine map
per channel that can be folded into the weights and a bias of the conv just before it. Each block
declares its ``(conv, bn)`` pairs in a ``conv_bn_pairs`` attribute next to its definition.

``prepare_for_inference`` then runs the folded network, by default, with vov3d's own fused CPU kernels
(``fused_inference.FusedVideoClassifier``: no compilation of the model, a C library built once in about
a second). Alternatively it runs it through ``fast_blocks.FastVideoClassifier`` ((N, T, H, W, C)
activations, 1x1x1 convs as matrix products, 1x3x3 convs as 2D convs over frames, temporal depthwise
convs as shift-adds), optionally compiled ahead of time with AOTInductor and inductor's ``freezing``
(weights become constants, packed for oneDNN; elementwise ops fused into single loops). Each compiled
package is cached on disk per input shape (``CompiledRunner``), so only the first call with a new shape,
ever, pays the compilation; see ``docs/performance.md`` for the measured effect of each step.
"""

from __future__ import annotations

import copy
import hashlib
import os
import platform
import warnings
from pathlib import Path

import torch
from torch import nn

from vov3d.allocator import keep_freed_memory
from vov3d.models import fast_blocks
from vov3d.models.cpu_kernels import has_bf16, load_kernels
from vov3d.models.fast_blocks import FastVideoClassifier
from vov3d.models.fused_inference import FusedVideoClassifier, fusable
from vov3d.models.network import VideoClassifier, single_pathway
from vov3d.models.stem import X3DStem


def fold_bn_into_conv(conv: nn.Conv3d, bn: nn.BatchNorm3d) -> nn.Conv3d:
    """A new conv equal to ``bn(conv(x))`` with ``bn`` in eval mode (its running statistics)."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv3d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1, 1))
        fused.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
    return fused


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def fold_batchnorms(model: nn.Module) -> int:
    """Fold, in place, every ``(conv, bn)`` pair that a module declares in ``conv_bn_pairs``.

    The BN is replaced by ``nn.Identity``. Returns the number of folded BNs. Eval mode only.
    """
    folded = 0
    for module in list(model.modules()):
        for conv_name, bn_name in getattr(module, "conv_bn_pairs", ()):
            bn = module.get_submodule(bn_name)
            if isinstance(bn, nn.Identity):
                continue
            _replace(module, conv_name, fold_bn_into_conv(module.get_submodule(conv_name), bn))
            _replace(module, bn_name, nn.Identity())
            folded += 1
    return folded


def default_cache_dir() -> Path:
    """Where compiled models and kernels are cached: ``$VOV3D_CACHE_DIR``, else ``$XDG_CACHE_HOME/vov3d``
    (``~/.cache/vov3d``)."""
    if os.environ.get("VOV3D_CACHE_DIR"):
        return Path(os.environ["VOV3D_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vov3d"


# Bump when the way ``CompiledRunner`` exports or compiles changes (options, wrapper): it is part of
# every package's key, with the source of ``fast_blocks.py`` (which defines the graph).
COMPILE_VERSION = 1
_INDUCTOR_CONFIGS = {"freezing": True}


def _source_digest() -> str:
    """A digest of what defines the compiled graph: ``fast_blocks.py`` and the compile options."""
    h = hashlib.sha256(Path(fast_blocks.__file__).read_bytes())
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
    def __init__(self, fast: FastVideoClassifier) -> None:
        super().__init__()
        self.fast = fast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fast.forward_nthwc(x)


class CompiledRunner:
    """Runs a ``FastVideoClassifier`` compiled ahead of time by AOTInductor, one package per input shape.

    The package (``<cache_dir>/aoti/<key>.pt2``) is keyed by the weights (``weights_digest``), the input
    shape and dtype, the torch version, the CPU's instruction set and the source of the graph; it is
    compiled on the first call with a new shape (``torch.export`` + ``aoti_compile_and_package`` with
    ``freezing``: weights are constants, packed for oneDNN) and loaded in milliseconds afterwards, in
    this process or any later one.
    """

    def __init__(self, fast: FastVideoClassifier, cache_dir: str | os.PathLike | None = None) -> None:
        self.module = _ForwardNTHWC(fast).eval()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._weights = weights_digest(fast)
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

    def _load_or_compile(self, x: torch.Tensor):
        path = self.package_path(x)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with torch.no_grad():
                exported = torch.export.export(self.module, (x,))
                tmp = path.with_suffix(f".{os.getpid()}.tmp.pt2")
                torch._inductor.aoti_compile_and_package(
                    exported, package_path=str(tmp), inductor_configs=dict(_INDUCTOR_CONFIGS)
                )
            os.replace(tmp, path)  # atomic: a concurrent reader sees a whole package or none
            self.compiled_shapes.append(tuple(x.shape))
        return torch._inductor.aoti_load_package(str(path))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype)
        runner = self._runners.get(key)
        if runner is None:
            try:
                runner = self._load_or_compile(x)
            except Exception as exc:  # no C++ compiler, an unsupported op, a broken package: run eagerly
                warnings.warn(f"vov3d: compiling for input {tuple(x.shape)} failed ({exc!r}); running eagerly")
                runner = self.module
            self._runners[key] = runner
        return runner(x)


class PreparedModel(nn.Module):
    """An inference-only model: BNs folded; fused kernels, a fast layout or compiled. Call it like the model.

    Attributes: ``model`` (the folded copy), ``fused`` (its ``FusedVideoClassifier`` or None), ``fast``
    (its ``FastVideoClassifier`` or None), ``compiled`` (a ``CompiledRunner`` or None), ``dtype`` (float32
    or bfloat16 compute).
    """

    def __init__(
        self,
        model: nn.Module,
        channels_last: bool,
        fast: FastVideoClassifier | None = None,
        compiled: CompiledRunner | None = None,
        dtype: torch.dtype = torch.float32,
        fused: FusedVideoClassifier | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.channels_last = channels_last
        self.fast = fast
        self.compiled = compiled
        self.dtype = dtype
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x = single_pathway(x)
            if self.fused is None and self.fast is None:
                if self.channels_last and isinstance(x, torch.Tensor) and x.dim() == 5:
                    x = x.contiguous(memory_format=torch.channels_last_3d)
                return self.model(x)
            self.model.check_input(x)
            out_dtype = x.dtype
            if self.fused is not None:  # float32 activations whatever its product dtype
                return self.fused(x.to(torch.float32).contiguous()).to(out_dtype)
            x = x.to(self.dtype).permute(0, 2, 3, 4, 1).contiguous()
            if self.compiled is not None:
                y = self.compiled(x)
            else:
                y = self.fast.forward_nthwc(x)
            return y.to(out_dtype)


def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 arithmetic (AVX512_BF16 or AMX) that oneDNN uses."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in (" avx512_bf16", " amx_bf16"))


def _fast_supported(model: nn.Module) -> bool:
    return isinstance(model, VideoClassifier) and isinstance(model.s1.pathway0_stem, X3DStem)


def prepare_for_inference(
    model: nn.Module,
    channels_last: bool = True,
    fast: bool | None = None,
    compile: bool = False,
    cache_dir: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.float32,
    keep_memory: bool = True,
    kernels: bool | None = None,
) -> PreparedModel:
    """A copy of ``model`` for fast inference; the original is left untouched.

    The copy is in eval mode, without gradients, with every BN folded into its conv
    (``fold_batchnorms``). Then it runs in one of four ways:

    * ``kernels`` (the default for a VoV3D or X3D on the CPU with the global-pool head, when neither
      ``fast`` nor ``compile`` is asked for): vov3d's fused CPU kernels (``fused_inference``),
      the fastest way on a CPU, without compiling the model. The kernel library is built with the
      system C compiler on first use (about a second) and cached in ``cache_dir``; without a compiler
      it warns and the module tree below runs instead. ``kernels=True`` insists (errors instead of
      falling back).
    * ``fast`` (VoV3D and X3D): ``FastVideoClassifier`` ((N, T, H, W, C) activations) eagerly; it is the
      graph that ``compile`` compiles.
    * ``compile``: the fast network compiled ahead of time with AOTInductor (``CompiledRunner``:
      ``torch.export``, inductor with ``freezing``). The first call with each new input shape compiles
      (one to three minutes on 2 cores); the package is cached on disk in ``cache_dir`` (default
      ``default_cache_dir()``), keyed by weights, shape, dtype and torch version, so any later call or
      process loads it in milliseconds.
    * otherwise the module tree, with its weights and inputs in ``channels_last_3d`` when ``channels_last``:
      also the default for a model on a GPU (not measured here: no GPU was available).

    ``dtype=torch.bfloat16``: with the kernels (the default where the kernel library has bfloat16
    products, i.e. the CPU has AVX512_BF16: ``cpu_kernels.has_bf16``), the 1x1x1 convs run as bfloat16
    products with float32 sums, everything else computes in float32, and the activations that (nearly) only
    products read are stored as bfloat16 (``fused_inference.FusedVideoClassifier``); otherwise
    (``fast``/``compile``, or no AVX512_BF16) the fast network runs with bfloat16 weights and activations.
    Inputs are cast, outputs returned in the input's dtype. Only worth it where the CPU has bfloat16
    instructions (``cpu_has_bf16()``).

    ``keep_memory``: call ``vov3d.allocator.keep_freed_memory()`` (process-wide: glibc malloc keeps freed
    memory instead of unmapping it, so large activations do not page-fault in at every call; a no-op
    under another allocator).

    Outputs equal the eval-mode model's to float32 rounding (within 1e-4) in float32.
    """
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
    if kernels and (fast or compile):
        raise ValueError("kernels=True runs vov3d's own kernels: not with fast or compile")
    if keep_memory:
        keep_freed_memory()
    prepared = copy.deepcopy(model).eval()
    for p in prepared.parameters():
        p.requires_grad_(False)
    fold_batchnorms(prepared)
    if channels_last:  # also for the fast and fused paths: oneDNN takes the 1x3x3 and 3x3x3 weights as they are
        prepared = prepared.to(memory_format=torch.channels_last_3d)
    if kernels and not fusable(prepared):
        raise ValueError("kernels=True needs a float32 VoV3D or X3D VideoClassifier on the CPU, global-pool head")
    by_default = kernels is None and fast is None and not compile
    if kernels or (by_default and fusable(prepared)):
        lib = load_kernels(cache_dir if cache_dir is not None else default_cache_dir())
        if lib is not None and (dtype == torch.float32 or has_bf16(lib)):
            fused = FusedVideoClassifier(prepared, lib, dtype)
            return PreparedModel(prepared, False, dtype=dtype, fused=fused).eval()
        if kernels and lib is None:
            raise RuntimeError("kernels=True: vov3d's CPU kernels could not be built (see the warning above)")
        if kernels:
            raise RuntimeError("kernels=True with bfloat16: this CPU has no AVX512_BF16 (cpu_kernels.has_bf16)")
    if fast is None:
        fast = compile or dtype != torch.float32
    use_fast = fast and _fast_supported(prepared)
    if (compile or dtype != torch.float32) and not use_fast:
        raise ValueError("compile and bfloat16 need fast=True and a VoV3D or X3D VideoClassifier")
    if use_fast:
        if dtype != torch.float32:
            prepared = prepared.to(dtype)
        fast_model = FastVideoClassifier(prepared).eval()
        runner = CompiledRunner(fast_model, cache_dir) if compile else None
        return PreparedModel(prepared, False, fast_model, runner, dtype).eval()
    return PreparedModel(prepared, channels_last).eval()
