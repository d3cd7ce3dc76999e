"""prepare_for_inference: BN folded, channels-last, outputs within 1e-4 of the plain model."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import vov3d
from tests.conftest import calibrate_batchnorms


@pytest.mark.parametrize("name", vov3d.list_models())
def test_prepared_model_matches_plain_model(name):
    torch.manual_seed(0)
    model = calibrate_batchnorms(vov3d.create_model(name, num_classes=10), shape=(2, 3, 4, 64, 64))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepared = vov3d.prepare_for_inference(model)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in prepared.modules())
    assert prepared.model.s1.pathway0_stem.conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        expected, got = model(x), prepared(x)
        exact = copy.deepcopy(model).double()(x.double())
    assert expected.abs().max() > 0.1  # the residual branches are on (calibrated BNs)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    # Folding adds no error beyond float32 rounding: as close to float64 as the plain model is.
    assert (got.double() - exact).abs().max() <= 2 * (expected.double() - exact).abs().max() + 1e-6
    # The plain model is untouched.
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_every_batchnorm_is_folded_once():
    from vov3d.models.inference import fold_batchnorms

    model = vov3d.create_model("vov3d_m").eval()
    n_bn = sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    assert fold_batchnorms(model) == n_bn
    assert fold_batchnorms(model) == 0
