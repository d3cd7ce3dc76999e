"""The training kernels as functions of tensors (``vov3d.ops.training_kernels``): the batch statistics they
return, their weight gradients in the weight's own shape, and their argument checks. Their exactness against
torch's modules, gradients included, is tested through the module adapters (``tests/accel/test_kernel_adapters.py``)."""

from __future__ import annotations

import pytest
import torch

from vov3d.ops import training_kernels
from vov3d.ops.library import load_library


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = load_library(tmp_path_factory.mktemp("kernels"))
    assert lib is not None, "the test machine has a C compiler: the kernels must build"
    return lib


def test_batch_norm_act_returns_the_batch_statistics(lib):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, 6, generator=g) * 2 + 1
    weight, bias = torch.rand(6, generator=g) + 0.5, torch.randn(6, generator=g)
    y, mean, var = training_kernels.batch_norm_act(lib, x, weight, bias, 1e-5, relu=True)
    rows = x.double().reshape(-1, 6)
    # Summed in float32 within blocks of rows, float64 across: float32 rounding of a few values, not of the sum.
    torch.testing.assert_close(mean, rows.mean(0), rtol=0, atol=2e-6)
    torch.testing.assert_close(var, rows.var(0, unbiased=False), rtol=1e-5, atol=0)
    expected = ((rows - rows.mean(0)) / (rows.var(0, unbiased=False) + 1e-5).sqrt() * weight.double() + bias.double())
    torch.testing.assert_close(y.double().reshape(-1, 6), expected.clamp_min(0), rtol=0, atol=1e-5)
    assert not mean.requires_grad and mean.dtype == var.dtype == torch.float64


def test_bn_relu_depthwise_returns_the_batch_statistics(lib):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 5, 5, 8, generator=g)
    y, mean, var = training_kernels.bn_relu_depthwise(lib, x, torch.ones(8), torch.zeros(8), 1e-5,
                                                      torch.randn(8, 1, 1, 3, 3, generator=g), 2)
    assert y.shape == (1, 2, 3, 3, 8)
    torch.testing.assert_close(mean, x.double().reshape(-1, 8).mean(0), rtol=0, atol=2e-6)


def test_pointwise_conv_gradient_has_the_weights_shape(lib):
    g = torch.Generator().manual_seed(2)
    weight = torch.randn(4, 6, 1, 1, 1, generator=g, requires_grad=True)
    parts = [torch.randn(10, 2, generator=g), torch.randn(10, 4, generator=g)]
    y = training_kernels.pointwise_conv(lib, parts, weight)
    torch.testing.assert_close(y, torch.cat(parts, 1) @ weight.detach().reshape(4, 6).t(), rtol=1e-5, atol=1e-5)
    y.sum().backward()
    assert weight.grad.shape == weight.shape
    torch.testing.assert_close(weight.grad.reshape(4, 6), torch.cat(parts, 1).sum(0).expand(4, 6), rtol=1e-5,
                               atol=1e-5)


def test_bad_arguments_are_named(lib):
    with pytest.raises(ValueError, match="x: expected a contiguous float32"):
        training_kernels.batch_norm_act(lib, torch.randn(2, 8).double(), torch.ones(8), torch.zeros(8), 1e-5)
    with pytest.raises(ValueError, match=r"a \(C, 1, k, 1, 1\) weight, k odd"):
        training_kernels.temporal_conv_sums(lib, torch.randn(1, 2, 3, 3, 8), torch.randn(8, 1, 2, 1, 1))
    with pytest.raises(ValueError, match=r"a \(C, 1, 1, 3, 3\) weight"):
        training_kernels.bn_relu_depthwise(lib, torch.randn(1, 2, 3, 3, 8), torch.ones(8), torch.zeros(8), 1e-5,
                                           torch.randn(8, 1, 3, 3, 3))
    with pytest.raises(ValueError, match=r"weight: expected a \(C_out, C_in, 1, 1, 1\)"):
        training_kernels.pointwise_conv(lib, torch.randn(4, 6), torch.randn(4, 6))
