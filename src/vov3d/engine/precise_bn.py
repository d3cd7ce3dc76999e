"""Precise BatchNorm statistics (spec §9.3), in plain torch (the original calls fvcore).

After an epoch, every BatchNorm's running mean and variance are replaced by the average, over up to
``num_batches`` training batches, of the per-batch mean and of the per-batch variance (unbiased, as
BatchNorm stores it), each batch weighted by its size (current fvcore; 2020 fvcore used a plain
mean). The model stays in train mode while it collects (dropout active, as in the original).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorm_layers(model: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm (1d/2d/3d, SyncBatchNorm and subclasses) that keeps running statistics."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def update_bn_stats(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    num_batches: int,
    device: torch.device | str | None = None,
) -> int:
    """Recompute every BatchNorm's running statistics from ``batches`` (spec §9.3).

    ``batches`` yields the model's input tensors (moved to ``device`` when given); at most
    ``num_batches`` of them are used. Each BN's momentum is set to 1 for the duration, so that after
    a forward its running stats are that batch's; they are averaged with weights proportional to the
    batch size the BN saw, written back, and the momenta (and the model's train/eval mode) restored.
    Returns the number of batches used, ``min(num_batches, available)``; with none, the statistics
    are left as they were. A BN that no batch reached also keeps its statistics.
    """
    if num_batches < 0:
        raise ValueError(f"num_batches must be >= 0, got {num_batches} (BN.NUM_BATCHES_PRECISE)")
    layers = batchnorm_layers(model)
    if not layers or num_batches == 0:
        return 0
    momenta = [bn.momentum for bn in layers]
    was_training = model.training
    means = [torch.zeros_like(bn.running_mean) for bn in layers]
    variances = [torch.zeros_like(bn.running_var) for bn in layers]
    seen = [0] * len(layers)  # clips each BN has averaged so far
    batch_sizes: list[int | None] = [None] * len(layers)

    def recorder(index: int):
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            batch_sizes[index] = int(inputs[0].shape[0])

        return hook

    saved = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in layers]
    handles = [bn.register_forward_pre_hook(recorder(i)) for i, bn in enumerate(layers)]
    used = 0
    try:
        model.train()
        for bn in layers:
            bn.momentum = 1.0
        for batch in batches:
            if device is not None:
                batch = batch.to(device, non_blocking=True)
            batch_sizes[:] = [None] * len(layers)
            model(batch)
            used += 1
            for i, bn in enumerate(layers):
                size = batch_sizes[i]
                if not size:
                    continue
                seen[i] += size
                weight = size / seen[i]  # running weighted mean: m += (x - m) * n / N
                means[i] += (bn.running_mean - means[i]) * weight
                variances[i] += (bn.running_var - variances[i]) * weight
            if used == num_batches:  # stop before drawing another batch from the loader
                break
    except BaseException:
        for i, bn in enumerate(layers):  # leave the model as it was, not with the last batch's stats
            bn.running_mean.copy_(saved[i][0])
            bn.running_var.copy_(saved[i][1])
        raise
    finally:
        for handle in handles:
            handle.remove()
        for i, bn in enumerate(layers):
            bn.momentum = momenta[i]
        model.train(was_training)
    for i, bn in enumerate(layers):
        if seen[i]:
            bn.running_mean.copy_(means[i])
            bn.running_var.copy_(variances[i])
    return used
