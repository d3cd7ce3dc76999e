"""Weight-decay groups found by module type (spec §9.1, §11.8) and the optimiser builder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vov3d.engine.optimizer import build_optimizer, parameter_groups, set_lr
from vov3d.models import create_model


def _norm_and_other_counts(model: nn.Module) -> tuple[int, int, int, int]:
    """(norm tensors, norm values, other tensors, other values), counted from the modules' own lists."""
    norm_types = (nn.BatchNorm3d,)
    norm_tensors = norm_values = all_tensors = all_values = 0
    for m in model.modules():
        for p in m.parameters(recurse=False):
            all_tensors += 1
            all_values += p.numel()
            if type(m) in norm_types:
                norm_tensors += 1
                norm_values += p.numel()
    return norm_tensors, norm_values, all_tensors - norm_tensors, all_values - norm_values


@pytest.mark.parametrize("name", ["vov3d_m_v2", "vov3d_m", "x3d_m"])
def test_groups_on_real_models(name):
    model = create_model(name, num_classes=10)
    norm_groups, other_groups = parameter_groups(model, weight_decay=5e-5, norm_weight_decay=0.0)
    assert norm_groups["weight_decay"] == 0.0 and other_groups["weight_decay"] == 5e-5
    norm_tensors, norm_values, other_tensors, other_values = _norm_and_other_counts(model)
    assert len(norm_groups["params"]) == norm_tensors
    assert sum(p.numel() for p in norm_groups["params"]) == norm_values
    assert len(other_groups["params"]) == other_tensors
    assert sum(p.numel() for p in other_groups["params"]) == other_values
    # Every BN weight/bias is in the no-decay group, nothing else is.
    bn_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.BatchNorm3d)}
    bn_ids |= {id(m.bias) for m in model.modules() if isinstance(m, nn.BatchNorm3d)}
    assert {id(p) for p in norm_groups["params"]} == bn_ids
    assert not bn_ids & {id(p) for p in other_groups["params"]}


def test_vov3d_m_v2_the_name_rule_would_decay_160_bn_tensors():
    """Spec §9.1: the original's "bn"-in-name rule gives decay to 160 tensors / 19,800 values of VoV3D-M v2."""
    model = create_model("vov3d_m_v2", num_classes=400)
    by_name_decayed = {id(p): p for n, p in model.named_parameters() if "bn" not in n}
    norm_groups, other_groups = parameter_groups(model, 5e-5, 0.0)
    misnamed = [p for p in norm_groups["params"] if id(p) in by_name_decayed]
    assert len(misnamed) == 160
    assert sum(p.numel() for p in misnamed) == 19_800
    assert {id(p) for p in other_groups["params"]} == set(by_name_decayed) - {id(p) for p in misnamed}


class _OddNorm(nn.BatchNorm3d):
    """A BN subclass (as a naive sync BN would be)."""


class _Zoo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)
        self.seq = nn.Sequential(nn.Conv3d(4, 4, 1), nn.BatchNorm3d(4), nn.GroupNorm(2, 4), nn.InstanceNorm3d(4, affine=True))
        self.sync = nn.SyncBatchNorm(4)
        self.odd_weight_name = _OddNorm(4)
        self.ln = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 2)
        self.tied = self.fc  # a shared module: its parameters are listed once
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_every_norm_type_and_shared_and_frozen_parameters():
    model = _Zoo()
    norm_groups, other_groups = parameter_groups(model, weight_decay=1e-4, norm_weight_decay=1e-6)
    norm_modules = [model.seq[1], model.seq[2], model.seq[3], model.sync, model.odd_weight_name, model.ln]
    assert [id(p) for p in norm_groups["params"]] == [id(p) for m in norm_modules for p in (m.weight, m.bias)]
    others = [model.conv.weight, model.conv.bias, model.seq[0].weight, model.seq[0].bias, model.fc.weight, model.fc.bias]
    assert [id(p) for p in other_groups["params"]] == [id(p) for p in others]
    assert norm_groups["weight_decay"] == 1e-6


def test_sgd_step_decays_only_non_norm_parameters():
    model = _Zoo()
    opt = build_optimizer(model, lr=0.5, weight_decay=0.1, norm_weight_decay=0.0)
    before_bn = model.seq[1].weight.detach().clone()
    before_conv = model.conv.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.equal(model.seq[1].weight, before_bn)
    # Nesterov SGD, first step, zero gradient: d = wd*w; buf = d; update = d + 0.9*buf = 1.9*wd*w.
    assert torch.allclose(model.conv.weight, before_conv * (1 - 0.5 * 1.9 * 0.1))


def test_sgd_settings():
    opt = build_optimizer(_Zoo())
    assert isinstance(opt, torch.optim.SGD)
    for group in opt.param_groups:
        assert group["nesterov"] is True and group["momentum"] == 0.9 and group["dampening"] == 0 and group["lr"] == 0.1
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 5e-5]


def test_adamw():
    opt = build_optimizer(_Zoo(), method="AdamW", lr=1e-3, weight_decay=0.05)
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.05]
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)


def test_set_lr():
    opt = build_optimizer(_Zoo())
    set_lr(opt, 0.0123)
    assert [g["lr"] for g in opt.param_groups] == [0.0123, 0.0123]


def test_bad_arguments():
    with pytest.raises(ValueError, match="'adam' is unknown: expected one of sgd, adamw"):
        build_optimizer(_Zoo(), method="adam")
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        build_optimizer(_Zoo(), momentum=0.0)
    with pytest.raises(ValueError, match="dampening"):
        build_optimizer(_Zoo(), dampening=0.1)
    with pytest.raises(ValueError, match="weight decay must be >= 0"):
        build_optimizer(_Zoo(), weight_decay=-1)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(nn.Linear(2, 2).requires_grad_(False))
    # Plain momentum-free SGD is fine without Nesterov.
    assert build_optimizer(_Zoo(), momentum=0.0, nesterov=False).param_groups[0]["momentum"] == 0.0
