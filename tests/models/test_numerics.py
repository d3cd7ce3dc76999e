"""Numerical fidelity: the modules equal an independent functional reference of spec §1–4 in float64."""

from __future__ import annotations

import pytest
import torch

import vov3d
from tests.conftest import calibrate_batchnorms
from tests.models.reference import reference_forward


def _random_model(name, **kwargs):
    torch.manual_seed(0)
    model = vov3d.create_model(name, num_classes=7, **kwargs).double()
    return calibrate_batchnorms(model, shape=(2, 3, 4, 64, 64))


@pytest.mark.parametrize("name", ["vov3d_m", "vov3d_m_v2", "vov3d_l", "x3d_m"])
def test_eval_output_equals_reference_in_float64(name):
    model = _random_model(name)
    x = torch.randn(2, 3, 5, 70, 90, dtype=torch.float64)
    family = "vov3d" if name.startswith("vov3d") else "x3d"
    with torch.no_grad():
        ours = model(x)
        ref = reference_forward(x, model.state_dict(), family)
    assert ours.shape == (2, 7)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-9)


def test_original_head_averages_softmax_over_positions_in_eval():
    # Pool fixed by a 64-px training crop (2x2) and 4 frames; a 96-px test input gives 2x2 positions.
    model = _random_model("vov3d_m", head_pool="original", num_frames=4, train_crop_size=64)
    x = torch.randn(2, 3, 4, 96, 96, dtype=torch.float64)
    with torch.no_grad():
        probs = model(x)
        ref = reference_forward(x, model.state_dict(), "vov3d", pool_size=(4, 2, 2))
    torch.testing.assert_close(probs, ref, rtol=0, atol=1e-9)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2, dtype=torch.float64))
    # Train mode: logits averaged over the positions (the original flattened them; spec §11.5).
    model.train()
    model.head.dropout.p = 0.0
    for m in model.modules():  # BNs on running statistics, as in the reference: only the head is in train mode
        if isinstance(m, torch.nn.BatchNorm3d):
            m.eval()
    with torch.no_grad():
        logits = model(x)
    ref = reference_forward(x, model.state_dict(), "vov3d", pool_size=(4, 2, 2), training=True)
    assert logits.shape == (2, 7)
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-9)


def test_global_and_original_head_agree_when_the_input_is_the_training_crop():
    torch.manual_seed(1)
    original = _random_model("x3d_m", head_pool="original", num_frames=4, train_crop_size=64)
    global_ = vov3d.create_model("x3d_m", num_classes=7).double().eval()
    global_.load_state_dict(original.state_dict())
    x = torch.randn(1, 3, 4, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(original(x), global_(x).softmax(dim=1), rtol=0, atol=1e-12)
