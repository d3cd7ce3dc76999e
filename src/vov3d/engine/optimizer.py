"""The optimiser and its two weight-decay groups (spec §9.1).

The original puts a parameter in the no-decay group when its *name* contains "bn"; VoV3D's
BatchNorms inside ``nn.Sequential`` are named ``...a.1.weight`` and so get weight decay (spec §9.1,
§11.8). Here a parameter is a norm parameter when the module that owns it is a normalisation layer,
whatever its name.
"""

from __future__ import annotations

import torch
from torch import nn

#: Module types whose parameters are norm parameters (BatchNorm*, SyncBatchNorm, InstanceNorm* are
#: all ``_NormBase``; subclasses such as a naive sync BN are included by ``isinstance``).
NORM_MODULE_TYPES: tuple[type[nn.Module], ...] = tuple(
    t
    for t in (
        nn.modules.batchnorm._NormBase,
        nn.GroupNorm,
        nn.LayerNorm,
        nn.LocalResponseNorm,
        getattr(nn, "RMSNorm", None),
    )
    if t is not None
)

METHODS = ("sgd", "adamw")


def norm_parameter_ids(model: nn.Module) -> set[int]:
    """``id()`` of every parameter owned directly by a normalisation module of ``model``."""
    return {
        id(p)
        for module in model.modules()
        if isinstance(module, NORM_MODULE_TYPES)
        for p in module.parameters(recurse=False)
    }


def parameter_groups(model: nn.Module, weight_decay: float, norm_weight_decay: float) -> list[dict]:
    """Two parameter groups, in the original's order: norm parameters, then all others (spec §9.1).

    Norm parameters (of any module in :data:`NORM_MODULE_TYPES`, found by type, not by name) get
    ``norm_weight_decay``; every other trainable parameter gets ``weight_decay``. Within a group the
    parameters keep ``model.named_parameters()`` order; frozen parameters (``requires_grad=False``)
    are left out, as in PySlowFast. Both groups are always present (possibly empty), so optimiser
    states keep the same layout for every model.
    """
    if weight_decay < 0 or norm_weight_decay < 0:
        raise ValueError(
            f"weight decay must be >= 0, got weight_decay={weight_decay} (SOLVER.WEIGHT_DECAY), "
            f"norm_weight_decay={norm_weight_decay} (BN.WEIGHT_DECAY)"
        )
    norm_ids = norm_parameter_ids(model)
    norm: list[nn.Parameter] = []
    other: list[nn.Parameter] = []
    for p in model.parameters():  # shared parameters are listed once
        if p.requires_grad:
            (norm if id(p) in norm_ids else other).append(p)
    return [
        {"params": norm, "weight_decay": norm_weight_decay},
        {"params": other, "weight_decay": weight_decay},
    ]


def build_optimizer(
    model: nn.Module,
    method: str = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    nesterov: bool = True,
    dampening: float = 0.0,
    weight_decay: float = 5e-5,
    norm_weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """SGD (Nesterov by default, as the original: spec §9.1) or AdamW over :func:`parameter_groups`.

    AdamW uses betas ``(0.9, 0.999)`` and eps ``1e-8`` as PySlowFast does; ``momentum``, ``nesterov``
    and ``dampening`` apply to SGD only.
    """
    name = method.lower()
    if name not in METHODS:
        raise ValueError(f"optimizing method {method!r} is unknown: expected one of {', '.join(METHODS)} (SOLVER.OPTIMIZING_METHOD)")
    if not lr >= 0:
        raise ValueError(f"learning rate must be >= 0, got {lr} (SOLVER.BASE_LR)")
    groups = parameter_groups(model, weight_decay, norm_weight_decay)
    if not any(g["params"] for g in groups):
        raise ValueError(f"{type(model).__name__} has no trainable parameters to optimise")
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    if not momentum >= 0:
        raise ValueError(f"momentum must be >= 0, got {momentum} (SOLVER.MOMENTUM)")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"Nesterov momentum needs momentum > 0 and dampening 0, got momentum={momentum} "
            f"(SOLVER.MOMENTUM), dampening={dampening} (SOLVER.DAMPENING); set SOLVER.NESTEROV False otherwise"
        )
    return torch.optim.SGD(
        groups, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group (done before every iteration, spec §9.1)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
