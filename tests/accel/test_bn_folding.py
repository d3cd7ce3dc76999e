"""BN folding's pair table (``vov3d.accel.bn_folding.CONV_BN_PAIRS``): it lives in accel, keyed by block type;
it pairs every BatchNorm of every registered model with the conv whose output it normalises, and folding
a pair leaves the block's output unchanged (spec §2.1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import vov3d
from tests.conftest import calibrate_batchnorms
from vov3d.accel.bn_folding import CONV_BN_PAIRS, conv_bn_pairs, fold_batchnorms
from vov3d.models import ResBlock, X3DBottleneck


@pytest.mark.parametrize("name", vov3d.list_models())
def test_every_batchnorm_is_in_exactly_one_pair(name):
    model = vov3d.create_model(name)
    paired = []
    for prefix, module in model.named_modules():
        assert not hasattr(module, "conv_bn_pairs"), f"{prefix}: the pure blocks know nothing of folding"
        for conv, bn in conv_bn_pairs(module):
            assert isinstance(module.get_submodule(conv), nn.Conv3d) and isinstance(module.get_submodule(bn),
                                                                                    nn.BatchNorm3d)
            paired.append(f"{prefix}.{bn}" if prefix else bn)
    batchnorms = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm3d)]
    assert sorted(paired) == sorted(batchnorms)


def test_a_subclass_of_a_listed_block_is_folded_too():
    from vov3d.models import X3DStem

    class MyStem(X3DStem):
        pass

    assert conv_bn_pairs(MyStem(24)) == CONV_BN_PAIRS[X3DStem]


def test_folding_keeps_the_eval_output():
    torch.manual_seed(0)
    model = calibrate_batchnorms(vov3d.create_model("x3d_m", num_classes=5), shape=(1, 3, 4, 32, 32))
    x = torch.randn(1, 3, 4, 32, 32)
    bottlenecks = sum(isinstance(m, X3DBottleneck) for m in model.modules())
    projections = sum(isinstance(m, ResBlock) and m.branch1 is not None for m in model.modules())
    with torch.no_grad():
        expected = model(x)
        # three per bottleneck, one per projection shortcut, the stem's and the head's
        assert fold_batchnorms(model) == 3 * bottlenecks + projections + 2
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in model.modules())
