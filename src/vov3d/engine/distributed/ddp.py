"""The model wrapper of a distributed job: torch's DistributedDataParallel (issue 18)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vov3d.engine.distributed import process_group as pg


def wrap_ddp(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``model`` (already on ``device``) in DDP when the job has several processes, else ``model`` itself.

    Gradients are averaged over the processes, so a per-process mean loss gives the gradient of the
    mean over the whole batch (BATCH_SIZE, the total over all processes, spec §8.1).
    """
    if pg.get_world_size() == 1:
        return model
    device_ids = [device.index if device.index is not None else pg.get_local_rank()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused_parameters)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (checkpoints store it without the ``module.`` prefix, spec §9.4)."""
    return model.module if isinstance(model, DistributedDataParallel) else model
