"""The training kernels applied to modules (``vov3d.accel.kernel_adapters`` over ``vov3d.ops.training_kernels``)
against torch's ops in float64: outputs, every gradient, and batch norm's running statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vov3d.accel import kernel_adapters
from vov3d.ops import training_kernels
from vov3d.ops.library import load_library


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = load_library(tmp_path_factory.mktemp("kernels"))
    assert lib is not None, "the test machine has a C compiler: the kernels must build"
    return lib


def leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_()


def assert_close(got: torch.Tensor, expected: torch.Tensor, tol: float = 2e-5, msg: str = "") -> None:
    """Within ``tol`` of the float64 result, relative to its largest magnitude."""
    scale = expected.abs().max().item() + 1e-12
    err = (got.double() - expected.double()).abs().max().item()
    assert err <= tol * scale, f"{msg}: error {err:.3g} for values up to {scale:.3g}"


def random_bn(c: int, momentum: float | None) -> nn.BatchNorm3d:
    bn = nn.BatchNorm3d(c, momentum=momentum)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-1, 1)
    return bn


@pytest.mark.parametrize("c", [5, 24, 37])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_act_equals_batchnorm3d(lib, c, relu, residual, momentum):
    torch.manual_seed(c)
    x = torch.randn(2, 3, 5, 7, c) * 3 + 2  # 210 rows: less than one block of 256
    res = torch.randn_like(x) if residual else None
    bn = random_bn(c, momentum)
    ref_bn = random_bn(c, momentum).double()
    ref_bn.load_state_dict(bn.state_dict())
    bn.num_batches_tracked.fill_(3)
    ref_bn.num_batches_tracked.fill_(3)
    grad = torch.randn_like(x)

    xa, ra = leaf(x), leaf(res) if residual else None
    y = kernel_adapters.batch_norm_act(lib, xa, bn, ra, relu)
    (y * grad).sum().backward()

    xb, rb = leaf(x.double()), leaf(res.double()) if residual else None
    yb = ref_bn(xb.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)
    yb = yb + rb if residual else yb
    yb = F.relu(yb) if relu else yb
    (yb * grad.double()).sum().backward()

    assert_close(y, yb, msg="output")
    assert_close(xa.grad, xb.grad, msg="input gradient")
    assert_close(bn.weight.grad, ref_bn.weight.grad, msg="weight gradient")
    assert_close(bn.bias.grad, ref_bn.bias.grad, msg="bias gradient")
    if residual:
        assert_close(ra.grad, rb.grad, msg="residual gradient")
    assert_close(bn.running_mean, ref_bn.running_mean, msg="running mean")
    assert_close(bn.running_var, ref_bn.running_var, msg="running variance")
    assert bn.num_batches_tracked.item() == ref_bn.num_batches_tracked.item() == 4


def test_batch_norm_act_sums_many_rows_accurately(lib):
    # 2 x 8 x 40 x 40 = 25600 rows of values far from zero: the mean and variance come out as in float64.
    torch.manual_seed(0)
    x = torch.randn(2, 8, 40, 40, 24) * 0.5 + 10
    bn = random_bn(24, 0.1)
    ref = random_bn(24, 0.1).double()
    ref.load_state_dict(bn.state_dict())
    y = kernel_adapters.batch_norm_act(lib, x, bn)
    yb = ref(x.double().permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)
    assert_close(y, yb, tol=1e-5, msg="output")
    assert_close(bn.running_var, ref.running_var, tol=1e-5, msg="running variance")


@pytest.mark.parametrize("shape,k", [((2, 5, 4, 3, 24), 3), ((1, 1, 3, 3, 7), 3), ((2, 6, 2, 5, 37), 5), ((1, 2, 4, 4, 16), 5)])
def test_temporal_conv_sums_equals_conv3d(lib, shape, k):
    torch.manual_seed(k)
    c = shape[-1]
    conv = nn.Conv3d(c, c, (k, 1, 1), padding=(k // 2, 0, 0), groups=c, bias=False)
    ref = nn.Conv3d(c, c, (k, 1, 1), padding=(k // 2, 0, 0), groups=c, bias=False).double()
    ref.load_state_dict(conv.state_dict())
    y = torch.randn(shape) + 1
    gv, g1, g2 = torch.randn(shape), torch.randn(shape[0], c), torch.randn(shape[0], c) * 0.1

    ya = leaf(y)
    v, s1, s2, shift = kernel_adapters.temporal_conv_sums(lib, ya, conv)
    ((v * gv).sum() + (s1 * g1).sum() + (s2 * g2).sum()).backward()

    yb = leaf(y.double())
    vb = ref(yb.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)
    assert_close(shift, vb[0, 0, 0, 0], msg="shift")  # the first pixel
    centred = vb - shift.double()
    s1b, s2b = centred.sum(dim=(1, 2, 3)), (centred * centred).sum(dim=(1, 2, 3))
    ((vb * gv.double()).sum() + (s1b * g1.double()).sum() + (s2b * g2.double()).sum()).backward()

    assert_close(v, vb, msg="output")
    assert_close(s1, s1b, msg="sums")
    assert_close(s2, s2b, msg="sums of squares")
    assert_close(ya.grad, yb.grad, msg="input gradient")
    assert_close(conv.weight.grad, ref.weight.grad, msg="weight gradient")


@pytest.mark.parametrize(
    "shape,stride",
    [
        ((2, 3, 6, 7, 48), 1),
        ((1, 2, 1, 3, 16), 1),  # one row
        ((2, 1, 4, 1, 32), 1),  # one column
        ((1, 2, 9, 8, 48), 2),
        ((2, 1, 5, 5, 20), 2),
        ((1, 2, 4, 3, 7), 1),
    ],
)
def test_bn_relu_depthwise_equals_batchnorm_relu_conv3d(lib, shape, stride):
    # Stride 1 with whole vectors of channels (the gather form), odd and even sizes at stride 2, and 20
    # and 7 channels (vectors with a scalar tail, and none: channel by channel, and the scatter form).
    torch.manual_seed(stride)
    c = shape[-1]
    bn, ref_bn = random_bn(c, 0.1), random_bn(c, 0.1).double()
    ref_bn.load_state_dict(bn.state_dict())
    conv = nn.Conv3d(c, c, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), groups=c, bias=False)
    ref = nn.Conv3d(c, c, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), groups=c, bias=False).double()
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(shape) + 0.3
    xa = leaf(x)
    y = kernel_adapters.bn_relu_depthwise(lib, xa, bn, conv)
    grad = torch.randn_like(y)
    (y * grad).sum().backward()
    xb = leaf(x.double())
    yb = ref(F.relu(ref_bn(xb.permute(0, 4, 1, 2, 3)))).permute(0, 2, 3, 4, 1)
    (yb * grad.double()).sum().backward()
    assert_close(y, yb, msg="output")
    assert_close(xa.grad, xb.grad, msg="input gradient")
    assert_close(conv.weight.grad, ref.weight.grad, msg="conv weight gradient")
    assert_close(bn.weight.grad, ref_bn.weight.grad, msg="batch norm weight gradient")
    assert_close(bn.bias.grad, ref_bn.bias.grad, msg="batch norm bias gradient")
    assert_close(bn.running_var, ref_bn.running_var, msg="running variance")


@pytest.mark.parametrize("act", ["relu", "silu"])
@pytest.mark.parametrize("c", [7, 16, 37])
def test_affine_act_equals_torch(lib, act, c):
    torch.manual_seed(c)
    x = torch.randn(3, 4, 5, 6, c) * 2
    scale, shift = torch.randn(3, c), torch.randn(3, c)
    grad = torch.randn_like(x)
    xa, sa, ta = leaf(x), leaf(scale), leaf(shift)
    y = training_kernels.affine_act(lib, xa, sa, ta, act)
    (y * grad).sum().backward()
    xb, sb, tb = leaf(x.double()), leaf(scale.double()), leaf(shift.double())
    z = xb * sb[:, None, None, None] + tb[:, None, None, None]
    yb = F.relu(z) if act == "relu" else F.silu(z)
    (yb * grad.double()).sum().backward()
    assert_close(y, yb, msg="output")
    for got, expected, what in ((xa, xb, "input"), (sa, sb, "scale"), (ta, tb, "shift")):
        assert_close(got.grad, expected.grad, msg=f"{what} gradient")


@pytest.mark.parametrize("k,n,rows", [(24, 48, 1000), (48, 24, 777), (13, 37, 300), (96, 192, 64), (20, 5, 50)])
def test_pointwise_conv_equals_linear(lib, k, n, rows):
    # Column counts cover the 32-, 24-, 16- and 8-wide tiles of the weight gradient and its scalar tail.
    torch.manual_seed(k)
    conv = nn.Conv3d(k, n, 1, bias=False)
    x = torch.randn(rows, 1, 1, 1, k)
    grad = torch.randn(rows, 1, 1, 1, n)
    xa = leaf(x)
    y = kernel_adapters.pointwise_conv(lib, xa, conv)
    (y * grad).sum().backward()
    xb, wb = leaf(x.double()), leaf(conv.weight.detach().double())
    yb = F.linear(xb, wb.reshape(n, k))
    (yb * grad.double()).sum().backward()
    assert_close(y, yb, msg="output")
    assert_close(xa.grad, xb.grad, msg="input gradient")
    assert_close(conv.weight.grad, wb.grad, msg="weight gradient")


def test_pointwise_conv_over_parts_equals_linear_over_their_concatenation(lib):
    torch.manual_seed(0)
    widths = (5, 24, 11)
    conv = nn.Conv3d(sum(widths), 19, 1, bias=False)
    parts = [torch.randn(2, 3, 4, 5, k) for k in widths]
    grad = torch.randn(2, 3, 4, 5, 19)
    leaves = [leaf(p) for p in parts]
    y = kernel_adapters.pointwise_conv(lib, leaves, conv)
    (y * grad).sum().backward()
    ref = [leaf(p.double()) for p in parts]
    wb = leaf(conv.weight.detach().double())
    yb = F.linear(torch.cat(ref, dim=-1), wb.flatten(1))
    (yb * grad.double()).sum().backward()
    assert_close(y, yb, msg="output")
    assert_close(conv.weight.grad, wb.grad, msg="weight gradient")
    for i, (got, expected) in enumerate(zip(leaves, ref)):
        assert_close(got.grad, expected.grad, msg=f"part {i} gradient")


def test_pointwise_conv_with_a_frozen_weight_still_gives_the_input_gradient(lib):
    torch.manual_seed(0)
    conv = nn.Conv3d(24, 48, 1, bias=False).requires_grad_(False)
    x = leaf(torch.randn(50, 24))
    kernel_adapters.pointwise_conv(lib, x, conv).sum().backward()
    torch.testing.assert_close(x.grad, conv.weight.flatten(1).sum(0).expand(50, 24), rtol=1e-5, atol=1e-5)
    assert conv.weight.grad is None


def test_bn_se_act_equals_batchnorm_squeeze_excitation_swish(lib):
    from vov3d.accel.channels_last import se_gate
    from vov3d.models.squeeze_excitation import SqueezeExcitation

    torch.manual_seed(0)
    c = 24
    v = torch.randn(2, 4, 5, 5, c) + 0.5
    bn, se = random_bn(c, 0.1), SqueezeExcitation(c, 1 / 8)
    ref_bn, ref_se = random_bn(c, 0.1).double(), SqueezeExcitation(c, 1 / 8).double()
    ref_bn.load_state_dict(bn.state_dict())
    ref_se.load_state_dict(se.state_dict())
    grad = torch.randn_like(v)

    va = leaf(v)
    shift = torch.full((c,), 0.3)
    centred = va.double() - shift.double()
    sums, sums_sq = centred.sum(dim=(1, 2, 3)), (centred**2).sum(dim=(1, 2, 3))
    y = kernel_adapters.bn_se_act(lib, va, sums, sums_sq, shift, bn, lambda pooled: se_gate(pooled, se), "silu")
    (y * grad).sum().backward()

    vb = leaf(v.double())
    yb = F.silu(ref_se(ref_bn(vb.permute(0, 4, 1, 2, 3)))).permute(0, 2, 3, 4, 1)
    (yb * grad.double()).sum().backward()

    assert_close(y, yb, msg="output")
    assert_close(va.grad, vb.grad, msg="input gradient")
    for (name, p), (_, q) in zip(
        list(bn.named_parameters()) + list(se.named_parameters()),
        list(ref_bn.named_parameters()) + list(ref_se.named_parameters()),
    ):
        assert_close(p.grad, q.grad, msg=f"{name} gradient")
    assert_close(bn.running_var, ref_bn.running_var, msg="running variance")


def test_bad_arguments_are_named(lib):
    bn = nn.BatchNorm3d(8)
    with pytest.raises(ValueError, match="x: expected a contiguous float32"):
        kernel_adapters.batch_norm_act(lib, torch.randn(2, 3, 8).double(), bn)
    with pytest.raises(ValueError, match="residual: expected shape"):
        kernel_adapters.batch_norm_act(lib, torch.randn(2, 3, 8), bn, residual=torch.randn(2, 8))
    with pytest.raises(ValueError, match="depthwise odd k x 1 x 1 conv"):
        kernel_adapters.temporal_conv_sums(lib, torch.randn(1, 2, 3, 3, 8), nn.Conv3d(8, 8, (3, 1, 1), groups=8))
    with pytest.raises(ValueError, match="depthwise 1x3x3 conv"):
        kernel_adapters.bn_relu_depthwise(lib, torch.randn(1, 2, 3, 3, 8), bn, nn.Conv3d(8, 8, (1, 3, 3), groups=8))
    with pytest.raises(ValueError, match="scale: expected shape"):
        training_kernels.affine_act(lib, torch.randn(2, 3, 8), torch.randn(8), torch.randn(2, 8))
    with pytest.raises(ValueError, match="act: expected"):
        training_kernels.affine_act(lib, torch.randn(2, 3, 8), torch.randn(2, 8), torch.randn(2, 8), "gelu")
    with pytest.raises(ValueError, match="x: expected 8 channels"):
        kernel_adapters.pointwise_conv(lib, torch.randn(4, 6), nn.Conv3d(8, 4, 1, bias=False))
    with pytest.raises(ValueError, match=r"x\[1\]: expected shape"):
        kernel_adapters.pointwise_conv(lib, [torch.randn(4, 4), torch.randn(5, 4)], nn.Conv3d(8, 4, 1, bias=False))
