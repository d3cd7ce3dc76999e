"""A VoV3D or X3D model made fast to train on a CPU (``benchmarks/RESULTS.md`` §4)."""

from __future__ import annotations

import os

import torch
from torch import nn

from vov3d.allocator import keep_freed_memory
from vov3d.models.cpu_kernels import load_kernels
from vov3d.models.fast_blocks import FastVideoClassifier
from vov3d.models.inference import default_cache_dir


def prepare_for_training(
    model: nn.Module,
    kernels: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    keep_memory: bool = True,
) -> FastVideoClassifier:
    """``model`` (a VoV3D or X3D ``VideoClassifier``) restructured to train fast on a CPU, same maths.

    The result holds ``model`` and trains its parameters (give the optimizer ``model.parameters()``, save
    ``model``'s checkpoints); ``train()``/``eval()`` on it set ``model``'s mode. It runs channels-last
    (``FastVideoClassifier``) and, with ``kernels`` (the default for a float32 model on the CPU), through
    vov3d's fused training kernels (``train_kernels``): batch norms with batch statistics, the temporal
    depthwise convs, squeeze-excitation, the activations and the 1x1x1 convs. The kernel library is built
    with the system C compiler on first use and cached in ``cache_dir`` (default ``default_cache_dir()``);
    without a compiler it warns and torch ops run instead; ``kernels=True`` insists (errors instead).
    Gradients equal the plain model's to float32 rounding.

    ``keep_memory``: ``vov3d.allocator.keep_freed_memory()`` (process-wide; see ``prepare_for_inference``).
    """
    if keep_memory:
        keep_freed_memory()
    cpu_float32 = all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())
    if kernels and not cpu_float32:
        raise ValueError("kernels=True: vov3d's training kernels need a float32 model on the CPU")
    lib = None
    if kernels or (kernels is None and cpu_float32):
        lib = load_kernels(cache_dir if cache_dir is not None else default_cache_dir())
        if lib is None and kernels:
            raise RuntimeError("kernels=True, but vov3d's kernel library could not be built (see the warning)")
    return FastVideoClassifier(model, kernels=lib)
