"""Turning a pure model into a fast one: BN folding, vov3d's kernels, the channels-last network, compilation.

    fast = vov3d.accel.prepare_for_inference(model)        # eval only, BN folded
    train_model = vov3d.accel.prepare_for_training(model)  # same maths, faster training step on a CPU
"""

from __future__ import annotations

from vov3d._lazy import lazy_exports

_EXPORTS = {
    "prepare_for_inference": "vov3d.models.inference",
    "prepare_for_training": "vov3d.models.training",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
