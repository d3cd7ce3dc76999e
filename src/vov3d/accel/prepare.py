"""Preparing a pure model to run fast: ``prepare_for_inference`` and ``prepare_for_training``, one ``backend``
each (spec §10; the measured effect of each in ``docs/performance.md``).

Backends (one word each, the same in both functions where both have it):

* ``"kernels"``: vov3d's hand-written CPU kernels (``vov3d.ops``). Inference: the ``KernelNetwork`` over the
  BN-folded model, float32 or, where the CPU has AVX512_BF16, bfloat16 products. Training: the
  ``ChannelsLastNetwork`` with the training kernels. Needs a C compiler (the library is built once, in about
  a second, and cached) and a float32 VoV3D or X3D on the CPU (inference: with the global-pool head).
* ``"channels_last"``: the ``ChannelsLastNetwork`` ((N, T, H, W, C) activations, ops a CPU does fast) run by
  torch ops: no compiler needed; VoV3D and X3D only. Inference in float32 or bfloat16.
* ``"compiled"`` (inference only): the channels-last network compiled ahead of time by AOTInductor
  (``CompiledRunner``); the first call with each new input shape compiles (minutes on 2 cores), cached on disk.
* ``"eager"``: the module tree as it is defined. Inference: BN folded, weights and inputs in
  ``channels_last_3d``; training: the model itself, unchanged. Any model, any device (the choice on a GPU).
* ``"auto"`` (the default): ``"kernels"`` where they run and the CPU has AVX-512; else, for inference,
  ``"channels_last"`` in bfloat16 and ``"eager"`` in float32, and for training ``"channels_last"`` for a VoV3D
  or X3D on the CPU and ``"eager"`` otherwise. The kernels are written for AVX-512: on an AVX2-only CPU they
  measured 11-15x slower than ``"eager"`` at inference and 3x slower than ``"channels_last"`` in training
  (docs/performance.md), so ``"auto"`` passes over them there, silently. When it passes over them on an
  AVX-512 CPU (no compiler, the model, the dtype) it warns once, saying why.

A backend asked for by name that cannot run here raises ``BackendUnavailable``, whose message says why (no C
compiler, no AVX512_BF16, the model's type, device or dtype).
"""

from __future__ import annotations

import copy
import ctypes
import os
import warnings
from typing import Literal, Sequence

import torch
from torch import nn

from vov3d.accel.allocator import keep_freed_memory
from vov3d.accel.bn_folding import fold_batchnorms
from vov3d.accel.channels_last import ChannelsLastNetwork
from vov3d.accel.compiled import CompiledRunner
from vov3d.accel.kernel_network import KernelNetwork, kernel_network_unsupported
from vov3d.models.network import VideoClassifier, single_pathway
from vov3d.models.stem import X3DStem
from vov3d.ops.library import has_bf16, library_error, library_unavailable, load_library
from vov3d.utils.cpu_features import has_avx512

InferenceBackend = Literal["auto", "kernels", "channels_last", "compiled", "eager"]
TrainingBackend = Literal["auto", "kernels", "channels_last", "eager"]
INFERENCE_BACKENDS: tuple[str, ...] = ("auto", "kernels", "channels_last", "compiled", "eager")
TRAINING_BACKENDS: tuple[str, ...] = ("auto", "kernels", "channels_last", "eager")
DTYPES = (torch.float32, torch.bfloat16)


class BackendUnavailable(RuntimeError):
    """A backend asked for by name cannot run here, or not with this model; the message says why."""


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=3)


def _check_choice(backend: str, choices: Sequence[str], what: str) -> str:
    if backend not in choices:
        raise ValueError(f"{what}: backend must be one of {', '.join(map(repr, choices))}, got {backend!r}")
    return backend


def _check_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype not in DTYPES:
        raise ValueError(f"prepare_for_inference: dtype must be torch.float32 or torch.bfloat16, got {dtype}")
    return dtype


def _channels_last_unsupported(model: nn.Module) -> str | None:
    if isinstance(model, VideoClassifier) and isinstance(model.s1.pathway0_stem, X3DStem):
        return None
    return f"it runs VoV3D and X3D VideoClassifiers, not {type(model).__name__}"


def _library(cache_dir: str | os.PathLike | None) -> tuple[ctypes.CDLL | None, str | None]:
    """The kernel library, or None and why not."""
    reason = library_unavailable()
    if reason is not None:
        return None, reason
    lib = load_library(cache_dir, warn=False)
    return lib, None if lib is not None else library_error(cache_dir) or "the kernel library could not be built"


class InferenceModel(nn.Module):
    """A pure model prepared for inference (``prepare_for_inference``): BNs folded, run by one backend. Call it
    like the model: (N, 3, T, H, W) or ``[clip]``; outputs in the input's dtype, no gradients.

    Its registered submodules are the folded model's own (``state_dict()`` lists each folded tensor once, under
    the model's names). Attributes: ``model`` (the folded copy), ``backend``, ``dtype`` (float32 or bfloat16
    compute) and ``runner`` (the ``KernelNetwork``, ``ChannelsLastNetwork`` or ``CompiledRunner``; None for
    ``"eager"``).
    """

    def __init__(
        self,
        model: nn.Module,
        backend: str,
        dtype: torch.dtype = torch.float32,
        runner: KernelNetwork | ChannelsLastNetwork | CompiledRunner | None = None,
    ) -> None:
        super().__init__()
        for name, child in model.named_children():
            self.add_module(name, child)
        object.__setattr__(self, "model", model)  # a reference: its tensors are listed once, above
        object.__setattr__(self, "runner", runner)
        self.backend = backend
        self.dtype = dtype

    def train(self, mode: bool = True) -> InferenceModel:
        if mode:
            raise RuntimeError("an InferenceModel runs in eval mode only (BNs folded): train the pure model")
        super().train(False)
        self.model.train(False)
        return self

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            x = single_pathway(x)
            if self.backend == "eager":
                out_dtype = x.dtype if isinstance(x, torch.Tensor) else None
                if isinstance(x, torch.Tensor) and x.dim() == 5:
                    x = x.to(self.dtype).contiguous(memory_format=torch.channels_last_3d)
                y = self.model(x)
                return y if out_dtype is None else y.to(out_dtype)
            self.model.check_input(x)
            out_dtype = x.dtype
            if self.backend == "kernels":  # float32 activations whatever its product dtype
                return self.runner(x.to(torch.float32).contiguous()).to(out_dtype)
            x = x.to(self.dtype).permute(0, 2, 3, 4, 1).contiguous()
            if self.backend == "compiled":
                y = self.runner(x)
            else:
                y = self.runner.forward_nthwc(x)
            return y.to(out_dtype)


def _inference_kernels_unavailable(
    folded: nn.Module, dtype: torch.dtype, cache_dir: str | os.PathLike | None
) -> tuple[ctypes.CDLL | None, str | None]:
    reason = kernel_network_unsupported(folded)
    if reason is not None:
        return None, reason
    lib, reason = _library(cache_dir)
    if lib is not None and dtype == torch.bfloat16 and not has_bf16(lib):
        return None, "bfloat16 needs a CPU with AVX512_BF16 (the kernel library was built without bfloat16 products)"
    return lib, reason


def _torch_ops_backend(folded: nn.Module, dtype: torch.dtype) -> str:
    """What ``"auto"`` runs without the kernels: the channels-last network in bfloat16, the folded tree in float32."""
    return "channels_last" if dtype != torch.float32 and _channels_last_unsupported(folded) is None else "eager"


def prepare_for_inference(
    model: nn.Module,
    backend: InferenceBackend = "auto",
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike | None = None,
    keep_memory: bool = True,
) -> InferenceModel:
    """A copy of ``model`` for fast inference (the original is left untouched): eval mode, no gradients, every BN
    folded into its conv (``fold_batchnorms``), weights in ``channels_last_3d``, run by ``backend`` (see the
    module docstring: ``"auto"``, ``"kernels"``, ``"channels_last"``, ``"compiled"``, ``"eager"``).

    ``dtype=torch.bfloat16``: with the kernels (where the CPU has AVX512_BF16), the 1x1x1 convs run as bfloat16
    products with float32 sums, everything else computes in float32, and the activations that (nearly) only
    products read are stored as bfloat16 (``KernelNetwork``); with the other backends the network runs with
    bfloat16 weights and activations. Inputs are cast, outputs returned in the input's dtype.

    ``cache_dir``: where the kernel library and compiled packages are cached (default
    ``vov3d.ops.library.default_cache_dir()``). ``keep_memory``: ``keep_freed_memory()`` (process-wide: glibc
    malloc keeps freed memory instead of unmapping it, so large activations do not page-fault in at every call;
    a no-op under another allocator).

    Outputs equal the eval-mode model's to float32 rounding (within 1e-4) in float32.
    """
    _check_choice(backend, INFERENCE_BACKENDS, "prepare_for_inference")
    dtype = _check_dtype(dtype)
    if keep_memory:
        keep_freed_memory()
    folded = copy.deepcopy(model).eval()
    for p in folded.parameters():
        p.requires_grad_(False)
    fold_batchnorms(folded)
    # Also for the kernels and the channels-last network: oneDNN takes the 1x3x3 and 3x3x3 weights as they are.
    folded = folded.to(memory_format=torch.channels_last_3d)
    if backend == "auto" and not has_avx512():  # the kernels are slower than torch ops here (module docstring)
        backend = _torch_ops_backend(folded, dtype)
    if backend in ("auto", "kernels"):
        lib, reason = _inference_kernels_unavailable(folded, dtype, cache_dir)
        if lib is not None:
            return InferenceModel(folded, "kernels", dtype, KernelNetwork(folded, lib, dtype)).eval()
        if backend == "kernels":
            raise BackendUnavailable(f"prepare_for_inference: backend='kernels' cannot run here: {reason}")
        on_cpu = all(p.device.type == "cpu" for p in folded.parameters())
        if on_cpu and kernel_network_unsupported(folded) is None:  # a model the kernels run, on a host without
            _warn_once(f"vov3d: the kernels cannot run here ({reason}); using torch ops instead")
        backend = _torch_ops_backend(folded, dtype)
    if backend in ("channels_last", "compiled"):
        reason = _channels_last_unsupported(folded)
        if reason is not None:
            raise BackendUnavailable(f"prepare_for_inference: backend={backend!r} cannot run this model: {reason}")
        if dtype != torch.float32:
            folded = folded.to(dtype)
        network = ChannelsLastNetwork(folded).eval()
        runner = CompiledRunner(network, cache_dir) if backend == "compiled" else network
        return InferenceModel(folded, backend, dtype, runner).eval()
    if dtype != torch.float32:
        folded = folded.to(dtype)
    return InferenceModel(folded, "eager", dtype).eval()


def prepare_for_training(
    model: nn.Module,
    backend: TrainingBackend = "auto",
    cache_dir: str | os.PathLike | None = None,
    keep_memory: bool = True,
) -> nn.Module:
    """``model`` arranged to train fast, same maths; its parameters are trained in place (give the optimizer
    ``model.parameters()`` or the result's: the same tensors).

    ``backend`` (see the module docstring): ``"kernels"`` or ``"channels_last"`` return a
    ``ChannelsLastNetwork`` over ``model`` (a VoV3D or X3D), with or without the training kernels (batch norms
    with batch statistics, the temporal depthwise convs, squeeze-excitation, the activations and the 1x1x1
    convs; float32 on the CPU); ``"eager"`` returns ``model`` itself. Whichever it is, the result's
    ``state_dict()`` has exactly ``model``'s keys and tensors, so checkpoints saved from it load into the pure
    model, and ``train()``/``eval()`` on it set ``model``'s mode. Gradients equal the plain model's to float32
    rounding.

    ``cache_dir``: where the kernel library is cached. ``keep_memory``: ``keep_freed_memory()`` (process-wide;
    see ``prepare_for_inference``).
    """
    _check_choice(backend, TRAINING_BACKENDS, "prepare_for_training")
    if keep_memory:
        keep_freed_memory()
    shape_reason = _channels_last_unsupported(model)
    params = list(model.parameters())
    on_cpu = all(p.device.type == "cpu" for p in params)
    cpu_float32 = on_cpu and all(p.dtype == torch.float32 for p in params)
    torch_ops_backend = "channels_last" if on_cpu and shape_reason is None else "eager"  # "auto" without the kernels
    if backend == "auto" and not has_avx512():  # the kernels are slower than torch ops here (module docstring)
        backend = torch_ops_backend
    if backend in ("auto", "kernels"):
        if shape_reason is not None:
            reason: str | None = shape_reason
        elif not cpu_float32:
            kinds = sorted({f"{str(p.dtype).removeprefix('torch.')} on {p.device}" for p in params})
            reason = f"the training kernels run float32 models on the CPU, not {', '.join(kinds)}"
        else:
            lib, reason = _library(cache_dir)
            if lib is not None:
                return ChannelsLastNetwork(model, lib)
        if backend == "kernels":
            raise BackendUnavailable(f"prepare_for_training: backend='kernels' cannot run here: {reason}")
        if cpu_float32 and shape_reason is None:
            _warn_once(f"vov3d: the training kernels cannot run here ({reason}); using torch ops instead")
        backend = torch_ops_backend
    if backend == "channels_last":
        if shape_reason is not None:
            raise BackendUnavailable(f"prepare_for_training: backend='channels_last' cannot run this model: "
                                     f"{shape_reason}")
        return ChannelsLastNetwork(model)
    return model
