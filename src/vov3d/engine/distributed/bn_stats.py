"""Precise BN over all processes (issue 18; spec §9.3).

``engine.precise_bn.update_bn_stats`` recomputes each BatchNorm's running statistics from this
process's batches only. :func:`average_bn_stats`, called on every rank right after it, replaces
them by their average over the processes, weighted by the clips each process used (or equally),
so that every rank ends with the same statistics: the batch-size-weighted mean over all ranks'
batches that one process would have computed from the same batches.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from vov3d.engine.distributed import process_group as pg


@torch.no_grad()
def average_bn_stats(model: nn.Module, num_samples: int | None = None) -> int:
    """Average every BatchNorm's running mean and variance over the processes; returns the layers averaged.

    ``num_samples``: the clips this rank's precise-BN pass used (``update_bn_stats``' batches times
    their size); with it each rank is weighted by its share of all clips, without it equally.
    A rank with 0 samples contributes nothing (if every rank has 0, the statistics stay). Alone,
    a no-op. Collective: every rank must call it.
    """
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if pg.get_world_size() == 1 or not layers:
        return 0
    if num_samples is not None and num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    weight = 1.0 if num_samples is None else float(num_samples)
    stats = [t for bn in layers for t in (bn.running_mean, bn.running_var)]
    parts = [t.detach().to(torch.float64).flatten() for t in stats]
    flat = torch.cat(parts + [parts[0].new_zeros(1)])  # the last element: this rank's weight
    flat.mul_(weight)
    flat[-1] = weight
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    total = float(flat[-1])
    if total == 0:
        return 0
    flat.div_(total)
    offset = 0
    for t in stats:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()
    return len(layers)
