"""Forward and backward of every model on tiny inputs; the shapes it accepts and the ones it refuses."""

from __future__ import annotations

import pytest
import torch

import vov3d


@pytest.mark.parametrize("name", vov3d.list_models())
def test_forward_backward_train_and_eval(name):
    torch.manual_seed(0)
    model = vov3d.create_model(name, num_classes=5)
    x = torch.randn(2, 3, 3, 40, 56)
    logits = model(x)
    assert logits.shape == (2, 5)
    torch.nn.functional.cross_entropy(logits, torch.tensor([1, 4])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # Zero-initialised final BNs still receive a gradient, so the residual branches can learn.
    assert model.s5.pathway0_res0.branch2.c_bn.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 1, 17, 33))  # any T >= 1, any H, W with the global pool
    assert out.shape == (1, 5) and torch.isfinite(out).all()


def test_pathway_list_input_is_accepted():
    model = vov3d.create_model("vov3d_m", num_classes=3).eval()
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model([x]), model(x))
        prepared = vov3d.prepare_for_inference(model)
        torch.testing.assert_close(prepared([x]), model(x), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="expected one pathway, got a list of 2 tensors"):
        model([x, x])


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.randn(3, 4, 32, 32), r"\(N, 3, T, H, W\).*4-d tensor"),
        (torch.randn(1, 1, 4, 32, 32), r"\(N, 3, T, H, W\).*1 channels"),
        (torch.zeros(1, 3, 4, 32, 32, dtype=torch.uint8), r"dtype torch.uint8"),
        (torch.randn(1, 3, 0, 32, 32), r"T, H, W >= 1"),
    ],
)
def test_bad_input_names_the_expected_shape(x, message):
    model = vov3d.create_model("vov3d_m", num_classes=3)
    with pytest.raises(ValueError, match=message):
        model(x)


def test_original_head_refuses_inputs_smaller_than_its_pool():
    model = vov3d.create_model("x3d_m", num_classes=3, head_pool="original", num_frames=4, train_crop_size=64)
    with pytest.raises(ValueError, match=r"T >= 4 and H, W >= 33.*fixed pool 4x2x2"):
        model(torch.randn(1, 3, 4, 32, 64))
    with pytest.raises(ValueError, match=r"T >= 4"):
        model(torch.randn(1, 3, 3, 64, 64))
    assert model(torch.randn(1, 3, 4, 33, 33)).shape == (1, 3)


def test_unknown_head_pool_is_refused():
    with pytest.raises(ValueError, match="'global' or 'original'"):
        vov3d.create_model("vov3d_m", head_pool="max")
