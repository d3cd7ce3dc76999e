"""Turning a pure model into a fast one: BN folding, the kernel network, the channels-last network, compilation.

    model = vov3d.accel.prepare_for_inference(model)                       # eval only, BNs folded; backend="auto"
    model = vov3d.accel.prepare_for_inference(model, backend="kernels", dtype=torch.bfloat16)
    train_model = vov3d.accel.prepare_for_training(model)                  # same maths, same state_dict keys

Modules: ``prepare`` (the two entry points and their backends), ``bn_folding`` (the conv/BN pair table),
``kernel_network`` (inference with ``vov3d.ops``' kernels), ``channels_last`` (the (N, T, H, W, C) network,
with or without the training kernels through ``kernel_adapters``), ``compiled`` (AOTInductor and its cache),
``allocator`` (keeping freed memory in the process).
"""

from __future__ import annotations

from vov3d._lazy import lazy_exports

_EXPORTS = {
    "BackendUnavailable": "vov3d.accel.prepare",
    "InferenceModel": "vov3d.accel.prepare",
    "prepare_for_inference": "vov3d.accel.prepare",
    "prepare_for_training": "vov3d.accel.prepare",
    "ChannelsLastNetwork": "vov3d.accel.channels_last",
    "KernelNetwork": "vov3d.accel.kernel_network",
    "CompiledRunner": "vov3d.accel.compiled",
    "fold_batchnorms": "vov3d.accel.bn_folding",
    "keep_freed_memory": "vov3d.accel.allocator",
    "describe_allocator": "vov3d.accel.allocator",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
