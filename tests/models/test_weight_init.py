"""Initialisation as the original (spec §5)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import vov3d
from vov3d.models import ResBlock


@pytest.mark.parametrize("name", ["vov3d_m_v2", "x3d_m"])
def test_batchnorm_and_linear_init(name):
    torch.manual_seed(0)
    model = vov3d.create_model(name)
    final_bns = {n for n, m in model.named_modules() if n.endswith("branch2.c_bn")}
    assert final_bns  # one per block
    for n, m in model.named_modules():
        if isinstance(m, nn.BatchNorm3d):
            assert torch.all(m.bias == 0)
            assert torch.all(m.weight == (0.0 if n in final_bns else 1.0)), n
            assert torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)
    proj = model.head.projection
    assert torch.all(proj.bias == 0)
    assert proj.weight.std().item() == pytest.approx(0.01, rel=0.05)


def test_conv_init_is_msra_fan_out_including_depthwise():
    torch.manual_seed(0)
    model = vov3d.create_model("vov3d_l")
    checked = 0
    for n, m in model.named_modules():
        if isinstance(m, nn.Conv3d) and m.weight.numel() >= 20000:
            fan_out = m.out_channels * math.prod(m.kernel_size)  # not divided by groups
            assert m.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.05), n
            checked += 1
        if isinstance(m, nn.Conv3d) and m.bias is not None:
            assert torch.all(m.bias == 0)
    dw = model.s5.pathway0_res0.branch2.layers[0].b1  # 384 channels, 1x3x3, groups 384
    assert dw.groups == 384 and dw.weight.std().item() == pytest.approx(math.sqrt(2 / (384 * 9)), rel=0.1)
    assert checked > 10


def test_every_block_outputs_relu_of_its_shortcut_at_init():
    torch.manual_seed(0)
    model = vov3d.create_model("vov3d_m").eval()
    seen = []

    def check(block, inputs, output):
        x = inputs[0]
        shortcut = x if block.branch1 is None else block.branch1_bn(block.branch1(x))
        torch.testing.assert_close(output, torch.relu(shortcut))
        seen.append(block)

    for m in model.modules():
        if isinstance(m, ResBlock):
            m.register_forward_hook(check)
    with torch.no_grad():
        model(torch.randn(1, 3, 2, 64, 64))
    assert len(seen) == 6  # vov3d_m: blocks (1, 1, 2, 2)
