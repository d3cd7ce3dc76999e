"""Exponential moving average of the weights (ours, off by default: EMA.ENABLE, EMA.DECAY).

The EMA model is a deep copy of the pure model, kept in eval mode without gradients. After each
optimiser step every floating-point parameter becomes ``decay * ema + (1 - decay) * model``;
buffers (BatchNorm running statistics, counters) are copied from the model as they are.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside ``DistributedDataParallel``/``DataParallel`` and ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


class ModelEma:
    """EMA of a model's weights; ``.module`` is the averaged model (use it for evaluation)."""

    def __init__(self, model: nn.Module, decay: float = 0.9998) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay} (EMA.DECAY)")
        self.decay = float(decay)
        self.module = copy.deepcopy(unwrap_model(model))
        self.module.eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model`` (the same architecture, possibly wrapped)."""
        model = unwrap_model(model)
        ema_params = dict(self.module.named_parameters())
        params = dict(model.named_parameters())
        ema_buffers = dict(self.module.named_buffers())
        buffers = dict(model.named_buffers())
        if ema_params.keys() != params.keys() or ema_buffers.keys() != buffers.keys():
            extra = sorted((params.keys() | buffers.keys()) ^ (ema_params.keys() | ema_buffers.keys()))
            raise ValueError(f"the model does not match its EMA copy: tensors {extra[:5]} are only on one side")
        for name, ema_value in ema_params.items():
            value = params[name].detach()
            if ema_value.is_floating_point():
                ema_value.lerp_(value.to(ema_value.device, ema_value.dtype), 1.0 - self.decay)
            else:
                ema_value.copy_(value)
        for name, ema_value in ema_buffers.items():
            ema_value.copy_(buffers[name])

    def state_dict(self) -> dict[str, Any]:
        """The averaged model's ``state_dict`` (what a checkpoint stores)."""
        return self.module.state_dict()

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> Any:
        """Restore the averaged weights from :meth:`state_dict`."""
        return self.module.load_state_dict(state, strict=strict)
