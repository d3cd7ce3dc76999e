"""Synchronised BatchNorm (BN.NORM_TYPE sync_batchnorm; spec §7.3 notes, §11.15).

The original's NaiveSyncBatchNorm3d averages each GPU's batch mean and E[x²] over groups of
BN.NUM_SYNC_DEVICES consecutive GPUs of a machine. Here the layers are torch's own
``nn.SyncBatchNorm`` (``convert_sync_batchnorm``) scoped to process groups of NUM_SYNC_DEVICES
consecutive local ranks on each machine, or to the whole job with BN.GLOBAL_SYNC.

Documented exception: torch 2.13's ``nn.SyncBatchNorm`` refuses CPU tensors in training
("SyncBatchNorm expected input tensor to be on GPU ..."), and DDP refuses any ``nn.SyncBatchNorm``
in a CPU module ("SyncBatchNorm layers only work with GPU modules"), so a CPU (gloo) job cannot
use it. The layers of a model on CUDA are torch's ``nn.SyncBatchNorm``; those of a model on the
CPU become :class:`CPUSyncBatchNorm` (a ``_BatchNorm``, not a SyncBatchNorm), which computes the
same thing with torch.distributed collectives: each rank's count, mean and sum of squared deviations are
all-gathered and combined exactly (Chan's parallel formula, in float64; unequal batch sizes and
empty batches are fine), and the backward all-reduces the per-channel sums of dy and dy·x̂. The
result equals plain BatchNorm over the group's whole batch, gradients included. State dicts are
those of BatchNorm3d (same parameter and buffer names).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from vov3d.engine.distributed import process_group as pg


def sync_bn_groups(world_size: int, local_world_size: int, num_sync_devices: int, global_sync: bool) -> list[list[int]]:
    """The ranks of each SyncBN group: consecutive blocks of ``num_sync_devices`` local ranks on each
    machine (global rank = machine * local_world_size + local rank), or one group of all ranks.

    Raises ValueError naming BN.NUM_SYNC_DEVICES and the processes per machine when the group size
    does not divide them (spec §11.15: the original fails deep inside instead).
    """
    if local_world_size < 1 or world_size % local_world_size:
        raise ValueError(f"{world_size} processes cannot run as {local_world_size} per machine")
    if global_sync:
        return [list(range(world_size))]
    if num_sync_devices < 1:
        raise ValueError(f"BN.NUM_SYNC_DEVICES must be >= 1, got {num_sync_devices}")
    if local_world_size % num_sync_devices:
        raise ValueError(
            f"BN.NUM_SYNC_DEVICES {num_sync_devices} does not divide the {local_world_size} process(es) per "
            f"machine (local world size; NUM_GPUS): sync BN groups are made of NUM_SYNC_DEVICES processes "
            f"of one machine. Set BN.NUM_SYNC_DEVICES to a divisor of {local_world_size}, BN.GLOBAL_SYNC True, "
            f"or BN.NORM_TYPE batchnorm (spec §11.15)"
        )
    return [list(range(start, start + num_sync_devices)) for start in range(0, world_size, num_sync_devices)]


class _SyncBatchNormCPU(torch.autograd.Function):
    """BatchNorm over the batches of every rank of ``group`` (CPU tensors; see the module doc)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                running_mean: torch.Tensor | None, running_var: torch.Tensor | None, eps: float,
                momentum: float, group: Any) -> torch.Tensor:
        channels = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        shape = [1, channels] + [1] * (x.dim() - 2)
        local_count = x.numel() // channels
        stats = torch.zeros(2 * channels + 1, dtype=torch.float64, device=x.device)
        if local_count:
            xd = x.detach().to(torch.float64)
            local_mean = xd.mean(dims)
            stats[0] = local_count
            stats[1:channels + 1] = local_mean
            stats[channels + 1:] = (xd - local_mean.view(shape)).square().sum(dims)
        gathered = [torch.empty_like(stats) for _ in range(dist.get_world_size(group))]
        dist.all_gather(gathered, stats, group=group)
        table = torch.stack(gathered)
        counts, means, m2s = table[:, :1], table[:, 1:channels + 1], table[:, channels + 1:]
        count = float(counts.sum())
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got {int(count)} over the group")
        mean = (counts * means).sum(0) / count
        m2 = (m2s + counts * (means - mean).square()).sum(0)
        var = m2 / count
        invstd = (var + eps).rsqrt()
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
        if running_var is not None:
            running_var.mul_(1 - momentum).add_((m2 / (count - 1)).to(running_var.dtype), alpha=momentum)
        mean_x, invstd_x = mean.to(x.dtype).view(shape), invstd.to(x.dtype).view(shape)
        x_hat = (x - mean_x) * invstd_x
        out = x_hat
        if weight is not None:
            out = out * weight.view(shape)
        if bias is not None:
            out = out + bias.view(shape)
        ctx.save_for_backward(x_hat, weight, invstd_x)
        ctx.group, ctx.count, ctx.dims, ctx.shape = group, count, dims, shape
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        x_hat, weight, invstd = ctx.saved_tensors
        channels = x_hat.shape[1]
        sum_dy = grad_out.sum(ctx.dims)
        sum_dy_xhat = (grad_out * x_hat).sum(ctx.dims)
        grad_weight = sum_dy_xhat.clone() if weight is not None and ctx.needs_input_grad[1] else None
        grad_bias = sum_dy.clone() if ctx.needs_input_grad[2] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            totals = torch.cat([sum_dy, sum_dy_xhat])
            dist.all_reduce(totals, op=dist.ReduceOp.SUM, group=ctx.group)  # the rank's gradient of the group's loss
            mean_dy = (totals[:channels] / ctx.count).view(ctx.shape)
            mean_dy_xhat = (totals[channels:] / ctx.count).view(ctx.shape)
            scale = invstd if weight is None else invstd * weight.view(ctx.shape)
            grad_x = (grad_out - mean_dy - x_hat * mean_dy_xhat) * scale
        return grad_x, grad_weight, grad_bias, None, None, None, None, None


class CPUSyncBatchNorm(_BatchNorm):
    """A BatchNorm synchronised over ``process_group`` in training, for CPU modules (see the module doc).

    Not an ``nn.SyncBatchNorm`` subclass: DDP refuses those on CPU modules ("SyncBatchNorm layers
    only work with GPU modules"). Eval mode, or a job of one, is plain BatchNorm.
    """

    process_group: Any = None

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            assert self.num_batches_tracked is not None
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as BatchNorm
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        running_mean = self.running_mean if not self.training or self.track_running_stats else None
        running_var = self.running_var if not self.training or self.track_running_stats else None
        group = None
        if self.training and pg.is_initialized():
            group = self.process_group or dist.group.WORLD
            if dist.get_world_size(group) == 1:
                group = None
        if group is None:
            return F.batch_norm(input, running_mean, running_var, self.weight, self.bias, use_batch_stats,
                                factor, self.eps)
        return _SyncBatchNormCPU.apply(input, self.weight, self.bias, running_mean, running_var, self.eps,
                                       factor, group)


def convert_sync_batchnorm(model: nn.Module, num_sync_devices: int, global_sync: bool = False) -> nn.Module:
    """Every BatchNorm of ``model`` -> a synchronised one (BN.NORM_TYPE sync_batchnorm), groups as
    :func:`sync_bn_groups` for this job; returns the converted model (the same object unless the
    model itself is a BatchNorm). Call it on every rank, in the same order with respect to other
    group creations, after moving the model to its device (CUDA layers are torch's SyncBatchNorm,
    CPU ones :class:`CPUSyncBatchNorm`) and before wrapping it in DDP. Alone (no process group) the layers compute
    plain BatchNorm, but the group size is still checked (spec §11.15).
    """
    world, local = pg.get_world_size(), pg.get_local_world_size()
    groups = sync_bn_groups(world, local, num_sync_devices, global_sync)
    group = None
    if world > 1 and len(groups) > 1:
        group, _ = dist.new_subgroups_by_enumeration(groups)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model, group)
    for module in converted.modules():
        if type(module) is not nn.SyncBatchNorm:
            continue
        tensors = [t for t in (module.weight, module.running_mean) if t is not None]
        if not tensors or tensors[0].device.type == "cpu":
            module.__class__ = CPUSyncBatchNorm  # same attributes (nn.SyncBatchNorm is a _BatchNorm)
    return converted
