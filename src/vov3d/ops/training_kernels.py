"""The training kernels (``csrc/training_kernels.c``) as autograd functions of tensors.

``vov3d.accel.channels_last.ChannelsLastNetwork`` with the kernel library (``prepare_for_training(model,
backend="kernels")``) runs its batch norms (in training mode), D(2+1)D's depthwise convs, squeeze-excitation,
the activations and the 1x1x1 convs through these (``vov3d.accel.kernel_adapters`` applies them to modules
and updates the batch norms' running statistics), on contiguous channels-last (N, T, H, W, C) tensors. What
they save is passes over memory: at batch 8 the activations fit in no cache, and the torch ops spent two
thirds of a training step in elementwise passes (``benchmarks/RESULTS.md`` §4).

* ``batch_norm_act``: batch norm with batch statistics, then an optional residual add and ReLU: two passes
  forward (sums, apply) and two backward, where torch takes five and five to eight.
* ``pointwise_conv``: a 1x1x1 conv as a matrix product, forward and input gradient through
  ``inference_kernels.gemm`` and the weight gradient ``x^T dy`` through ``vov3d_gemm_tn`` (1.0-2.4x MKL's rate
  on VoV3D-M's shapes, ``benchmarks/kernels.py --training-only``); T-OSA's aggregation reads its inputs in place;
* ``bn_relu_depthwise``: D(2+1)D's first batch norm, ReLU and depthwise 1x3x3 conv, the ReLU's output
  formed frame by frame in cache and never written out, forward and backward;
* ``temporal_conv_sums``: the depthwise k x 1 x 1 conv, with the per-clip sums of its output and of their
  squares in the same pass; its backward takes the gradients of those sums too, so that
* ``bn_se_act`` (batch norm, squeeze-excitation, Swish or ReLU after it) computes the batch statistics
  and the excitation from the sums, (N, C) tensors differentiated by autograd, and applies all of them
  in one pass (``affine_act``: per clip and channel ``act(v * scale + shift)``), one pass backward.

The batch-norm functions return the batch mean and (biased) variance too, for the caller's running
statistics. Batch statistics are summed in float64 (float32 within blocks of rows); gradients agree with
the plain model's to float32 rounding (``tests/ops/test_training_kernels.py``). First derivatives only: the
backward passes are ``once_differentiable`` (a double backward errors). ``act`` is always an activation
function: ``"relu"`` or ``"silu"``.
"""

from __future__ import annotations

import ctypes
from typing import Callable, Sequence

import torch
from torch.autograd.function import once_differentiable

from vov3d.ops.inference_kernels import gemm, pack_weight
from vov3d.ops.library import MAX_TAPS

ACTIVATIONS = {None: 0, "relu": 1, "silu": 2}  # the kernels' act codes


def _check(name: str, t: torch.Tensor) -> None:
    if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous float32 CPU tensor, got {t.dtype} on {t.device}")


def _rows(x: torch.Tensor) -> tuple[int, int]:
    c = x.shape[-1]
    return x.numel() // c, c


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32).contiguous()


def _normalization(s1, s2, shift, count, weight, bias, eps):  # noqa: ANN001, ANN202
    """Batch norm from the sums ``s1``, ``s2`` of ``count`` values' offsets from ``shift`` and of their squares,
    per channel (float64): mean, variance, 1 / std, and the scale and offset that apply it (float64;
    differentiable where the inputs are)."""
    d = s1 / count  # the mean's offset from the shift
    mean = shift.double() + d
    var = (s2 / count - d * d).clamp_min(0.0)
    invstd = (var + eps).rsqrt()
    scale = weight.double() * invstd
    return mean, var, invstd, scale, bias.double() - mean * scale


def _batch_statistics(lib, x, weight, bias, eps):  # noqa: ANN001, ANN202
    """Batch norm's batch statistics of (..., C) ``x``: float64 mean, variance and 1 / std, and the float32
    per-channel scale and shift that apply it."""
    rows, c = _rows(x)
    s1, s2, first = torch.empty(c, dtype=torch.float64), torch.empty(c, dtype=torch.float64), torch.empty(c)
    lib.vov3d_channel_sums(x.data_ptr(), rows, c, first.data_ptr(), s1.data_ptr(), s2.data_ptr())
    mean, var, invstd, scale, shift = _normalization(s1, s2, first, rows, weight, bias, eps)  # around the first row
    return mean, var, invstd, _f32(scale), _f32(shift)


def _batch_norm_input_grad(  # noqa: ANN202
    lib, dy, y, x, weight, mean32, invstd, scale, shift, relu, sg, sgx, dres  # noqa: ANN001
):
    """Batch norm's backward, second pass: the input gradient (and ``dres``, the residual's, if given) from
    the first pass's sums ``sg``, ``sgx`` (``mean32``: the mean in float32, as that pass took it); returns
    (dx, dweight, dbias)."""
    rows, c = _rows(x)
    k = weight.double() * invstd
    k2, k0 = _f32(-k * invstd * invstd * sgx / rows), _f32(-k * sg / rows)
    k = _f32(k)
    dx = torch.empty_like(x)
    lib.vov3d_bn_act_bwd_apply(
        dy.data_ptr(), y.data_ptr() if y is not None else None, x.data_ptr(), mean32.data_ptr(), scale.data_ptr(),
        shift.data_ptr(), k.data_ptr(), k2.data_ptr(), k0.data_ptr(), rows, c, int(relu), dx.data_ptr(),
        dres.data_ptr() if dres is not None else None,
    )
    return dx, _f32(sgx * invstd), _f32(sg)


class _BatchNormAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, residual, lib, eps, relu):  # noqa: ANN001, ANN205
        rows, c = _rows(x)
        mean, var, invstd, scale, shift = _batch_statistics(lib, x, weight, bias, eps)
        y = torch.empty_like(x)
        res = residual.data_ptr() if residual is not None else None
        lib.vov3d_affine_act(
            x.data_ptr(), scale.data_ptr(), shift.data_ptr(), rows, res, rows, c, int(relu), y.data_ptr()
        )
        # ReLU's mask: read from y after a residual add, else recomputed from x, scale and shift.
        ctx.save_for_backward(x, y if relu and residual is not None else None, weight, mean, invstd, scale, shift)
        ctx.lib, ctx.relu, ctx.has_residual = lib, relu, residual is not None
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _dmean, _dvar):  # noqa: ANN001, ANN205
        x, y, weight, mean, invstd, scale, shift = ctx.saved_tensors
        rows, c = _rows(x)
        dy = dy.contiguous()
        sg, sgx = torch.empty(c, dtype=torch.float64), torch.empty(c, dtype=torch.float64)
        mean32 = _f32(mean)
        ctx.lib.vov3d_bn_act_bwd_sums(
            dy.data_ptr(), y.data_ptr() if y is not None else None, x.data_ptr(), mean32.data_ptr(),
            scale.data_ptr(), shift.data_ptr(), rows, c, int(ctx.relu), sg.data_ptr(), sgx.data_ptr(),
        )
        dres = torch.empty_like(x) if ctx.has_residual and ctx.needs_input_grad[3] else None
        dx, dweight, dbias = _batch_norm_input_grad(
            ctx.lib, dy, y, x, weight, mean32, invstd, scale, shift, ctx.relu, sg, sgx, dres
        )
        return dx, dweight, dbias, dres, None, None, None


def batch_norm_act(
    lib: ctypes.CDLL,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float,
    residual: torch.Tensor | None = None,
    relu: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``act(batch_norm(x) + residual)`` over the last dim of a contiguous (..., C) ``x``, normalised with its
    batch statistics and the (C,) affine ``weight``, ``bias``; ``act`` is ReLU when ``relu``. Returns the output
    (differentiable in ``x``, ``residual``, ``weight`` and ``bias``) and the float64 batch mean and biased
    variance (C,) (not differentiable; for running statistics)."""
    _check("x", x)
    if residual is not None:
        _check("residual", residual)
        if residual.shape != x.shape:
            raise ValueError(f"residual: expected shape {tuple(x.shape)}, got {tuple(residual.shape)}")
    return _BatchNormAct.apply(x, weight, bias, residual, lib, eps, relu)


class _TemporalConvSums(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, weight, lib):  # noqa: ANN001, ANN205
        n, t, h, w, c = y.shape
        kt = weight.shape[2]
        taps = _f32(weight.reshape(c, kt).t())
        v, shift = torch.empty_like(y), torch.empty(c)
        s1, s2 = torch.empty(n, c, dtype=torch.float64), torch.empty(n, c, dtype=torch.float64)
        lib.vov3d_temporal_fwd(
            y.data_ptr(), taps.data_ptr(), kt, n, t, h * w, c, v.data_ptr(), shift.data_ptr(), s1.data_ptr(),
            s2.data_ptr(),
        )
        ctx.save_for_backward(y, v, taps, shift)
        ctx.lib, ctx.weight_shape = lib, weight.shape
        ctx.mark_non_differentiable(shift)
        return v, s1, s2, shift

    @staticmethod
    @once_differentiable
    def backward(ctx, dv, ds1, ds2, _dshift):  # noqa: ANN001, ANN205
        y, v, taps, shift = ctx.saved_tensors
        n, t, h, w, c = y.shape
        kt = taps.shape[0]
        dv = torch.zeros_like(v) if dv is None else dv.contiguous()
        e1 = torch.zeros(n, c) if ds1 is None else _f32(ds1)
        e2 = torch.zeros(n, c) if ds2 is None else _f32(2 * ds2)  # d s2 / dv = 2 (v - shift)
        dy = torch.empty_like(y)
        dtaps = torch.empty(kt, c, dtype=torch.float64)
        ctx.lib.vov3d_temporal_bwd(
            dv.data_ptr(), v.data_ptr(), e1.data_ptr(), e2.data_ptr(), shift.data_ptr(), y.data_ptr(),
            taps.data_ptr(), kt, n, t, h * w, c, dy.data_ptr(), dtaps.data_ptr(),
        )
        return dy, _f32(dtaps.t()).reshape(ctx.weight_shape), None


def temporal_conv_sums(
    lib: ctypes.CDLL, y: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A depthwise k x 1 x 1 conv (``weight`` (C, 1, k, 1, 1), k odd, zero padding k // 2, stride 1, no bias) over
    a contiguous (N, T, H, W, C) ``y``: its output ``v``, and the (N, C) float64 sums over (T, H, W) of
    ``v - shift`` and of their squares, with ``shift`` (C,) ``v``'s first pixel (sums around a typical value, for
    an accurate variance)."""
    _check("y", y)
    c = y.shape[-1]
    kt = weight.shape[2] if weight.dim() == 5 else 0
    if y.dim() != 5 or weight.shape != (c, 1, kt, 1, 1) or kt > MAX_TAPS or kt % 2 == 0:
        raise ValueError(f"expected (N, T, H, W, C) y and a (C, 1, k, 1, 1) weight, k odd and at most {MAX_TAPS}, "
                         f"got {tuple(y.shape)} and {tuple(weight.shape)}")
    return _TemporalConvSums.apply(y, weight, lib)


class _AffineAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, shift, lib, act):  # noqa: ANN001, ANN205
        rows, c = _rows(x)
        y = torch.empty_like(x)
        lib.vov3d_affine_act(
            x.data_ptr(), scale.data_ptr(), shift.data_ptr(), rows // x.shape[0], None, rows, c, act, y.data_ptr()
        )
        ctx.save_for_backward(x, scale, shift)
        ctx.lib, ctx.act = lib, act
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):  # noqa: ANN001, ANN205
        x, scale, shift = ctx.saved_tensors
        rows, c = _rows(x)
        dy = dy.contiguous()
        dx = torch.empty_like(x)
        dscale, dshift = torch.empty(scale.shape, dtype=torch.float64), torch.empty(shift.shape, dtype=torch.float64)
        ctx.lib.vov3d_affine_act_bwd(
            dy.data_ptr(), x.data_ptr(), scale.data_ptr(), shift.data_ptr(), rows // x.shape[0], rows, c,
            ctx.act, dx.data_ptr(), dscale.data_ptr(), dshift.data_ptr(),
        )
        return dx, _f32(dscale), _f32(dshift), None, None


def affine_act(
    lib: ctypes.CDLL, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, act: str = "silu"
) -> torch.Tensor:
    """``act(x * scale[n] + shift[n])`` for contiguous (N, ..., C) ``x`` and (N, C) ``scale``, ``shift``
    (per clip and channel); ``act``: ``"relu"`` or ``"silu"``."""
    _check("x", x)
    n, c = x.shape[0], x.shape[-1]
    for name, t in (("scale", scale), ("shift", shift)):
        _check(name, t)
        if t.shape != (n, c):
            raise ValueError(f"{name}: expected shape {(n, c)}, got {tuple(t.shape)}")
    if act not in ("relu", "silu"):
        raise ValueError(f"act: expected 'relu' or 'silu', got {act!r}")
    return _AffineAct.apply(x, scale, shift, lib, ACTIVATIONS[act])


def bn_se_act(
    lib: ctypes.CDLL,
    v: torch.Tensor,
    sums: torch.Tensor,
    sums_sq: torch.Tensor,
    shift: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float,
    gate: Callable[[torch.Tensor], torch.Tensor] | None,
    act: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``act(gate(bn(v)) * bn(v))`` for (N, T, H, W, C) ``v`` with its (N, C) ``sums`` and ``sums_sq`` around
    ``shift`` (from ``temporal_conv_sums``), ``bn`` a batch norm with batch statistics and the (C,) affine
    ``weight``, ``bias``. ``gate`` maps the (N, C) means of ``bn(v)`` to the squeeze-excitation scales (None: no
    SE). Returns the output and the float64 batch mean and biased variance (C,), detached."""
    n, c = sums.shape
    per_clip = v.numel() // (n * c)
    count = n * per_clip
    mean, var, _, scale, offset = _normalization(sums.sum(0), sums_sq.sum(0), shift, count, weight, bias, eps)
    scale, offset = scale.expand(n, c), offset.expand(n, c)
    if gate is not None:
        clip_means = shift.double() + sums / per_clip
        g = gate((clip_means * scale + offset).float()).double()
        scale, offset = scale * g, offset * g
    return affine_act(lib, v, _f32(scale), _f32(offset), act), mean.detach(), var.detach()


class _PointwiseConv(torch.autograd.Function):
    """A 1x1x1 conv over the concatenation of ``parts`` along channels (T-OSA's aggregation), which is never
    written: ``gemm`` reads the parts where they are, and each part gets its own gradient."""

    @staticmethod
    def forward(ctx, weight, lib, *parts):  # noqa: ANN001, ANN205
        rows, k = parts[0].numel() // parts[0].shape[-1], sum(part.shape[-1] for part in parts)
        n = weight.shape[0]
        w = weight.reshape(n, k)
        packed, zero = pack_weight(w.t(), torch.zeros(n))
        y = gemm(lib, [part.view(rows, -1) for part in parts], packed, zero, n)
        ctx.save_for_backward(w, *parts)
        ctx.lib, ctx.weight_shape = lib, weight.shape
        return y.view(*parts[0].shape[:-1], n)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):  # noqa: ANN001, ANN205
        w, *parts = ctx.saved_tensors
        n, rows = w.shape[0], parts[0].numel() // parts[0].shape[-1]
        dy = dy.contiguous().view(rows, n)
        grads, dws, k0 = [], [], 0
        for i, part in enumerate(parts):
            k = part.shape[-1]
            grad = None
            if ctx.needs_input_grad[2 + i]:
                packed, zero = pack_weight(w[:, k0 : k0 + k], torch.zeros(k))
                grad = gemm(ctx.lib, dy, packed, zero, k).view(part.shape)
            if ctx.needs_input_grad[0]:  # not for a frozen weight
                dw = torch.empty(k, n)
                ctx.lib.vov3d_gemm_tn(part.data_ptr(), dy.data_ptr(), rows, k, n, dw.data_ptr())
                dws.append(dw)
            grads.append(grad)
            k0 += k
        dweight = torch.cat(dws).t().reshape(ctx.weight_shape) if dws else None
        return dweight, None, *grads


def pointwise_conv(lib: ctypes.CDLL, x: torch.Tensor | Sequence[torch.Tensor], weight: torch.Tensor) -> torch.Tensor:
    """A 1x1x1 conv without bias (``weight`` (C_out, C_in, 1, 1, 1)) over the last dim of a contiguous (..., C_in)
    ``x`` (a strided conv's ``x`` is the input already subsampled), or over the concatenation of several such
    tensors along it, which is never written (each gets its own gradient)."""
    parts = [x] if isinstance(x, torch.Tensor) else list(x)
    for i, part in enumerate(parts):
        _check(f"x[{i}]" if len(parts) > 1 else "x", part)
        if part.shape[:-1] != parts[0].shape[:-1]:
            raise ValueError(f"x[{i}]: expected shape {tuple(parts[0].shape[:-1])} + (C,), got {tuple(part.shape)}")
    if weight.dim() != 5 or weight.shape[2:] != (1, 1, 1):
        raise ValueError(f"weight: expected a (C_out, C_in, 1, 1, 1) 1x1x1 conv weight, got {tuple(weight.shape)}")
    k = weight.shape[1]
    if sum(part.shape[-1] for part in parts) != k:
        shapes = [tuple(part.shape) for part in parts]
        raise ValueError(f"x: expected {k} channels in the last dim (all parts together), got shapes {shapes}")
    return _PointwiseConv.apply(weight, lib, *parts)


class _BatchNormReluDepthwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bn_weight, bn_bias, conv_weight, lib, eps, stride):  # noqa: ANN001, ANN205
        n, t, h, w, c = x.shape
        mean, var, invstd, scale, shift = _batch_statistics(lib, x, bn_weight, bn_bias, eps)
        taps = _f32(conv_weight.reshape(c, 9).t())
        ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
        y = torch.empty(n, t, ho, wo, c)
        lib.vov3d_bn_relu_dw3x3_fwd(
            x.data_ptr(), scale.data_ptr(), shift.data_ptr(), taps.data_ptr(), n * t, h, w, c, stride, y.data_ptr()
        )
        ctx.save_for_backward(x, bn_weight, mean, invstd, scale, shift, taps)
        ctx.lib, ctx.stride, ctx.weight_shape = lib, stride, conv_weight.shape
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _dmean, _dvar):  # noqa: ANN001, ANN205
        x, bn_weight, mean, invstd, scale, shift, taps = ctx.saved_tensors
        n, t, h, w, c = x.shape
        dy = dy.contiguous()
        g, mean32 = torch.empty_like(x), _f32(mean)
        dtaps = torch.empty(9, c, dtype=torch.float64)
        sg, sgx = torch.empty(c, dtype=torch.float64), torch.empty(c, dtype=torch.float64)
        ctx.lib.vov3d_bn_relu_dw3x3_bwd(
            x.data_ptr(), scale.data_ptr(), shift.data_ptr(), mean32.data_ptr(), dy.data_ptr(), taps.data_ptr(), n * t,
            h, w, c, ctx.stride, g.data_ptr(), dtaps.data_ptr(), sg.data_ptr(), sgx.data_ptr(),
        )
        dx, dweight, dbias = _batch_norm_input_grad(
            ctx.lib, g, None, x, bn_weight, mean32, invstd, scale, shift, False, sg, sgx, None
        )
        return dx, dweight, dbias, _f32(dtaps.t()).reshape(ctx.weight_shape), None, None, None


def bn_relu_depthwise(
    lib: ctypes.CDLL,
    x: torch.Tensor,
    bn_weight: torch.Tensor,
    bn_bias: torch.Tensor,
    eps: float,
    conv_weight: torch.Tensor,
    stride: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``conv(relu(bn(x)))`` for a contiguous (N, T, H, W, C) ``x``: ``bn`` a batch norm with batch statistics and
    the (C,) affine ``bn_weight``, ``bn_bias``; ``conv`` depthwise 1x3x3 (``conv_weight`` (C, 1, 1, 3, 3), padding
    (0, 1, 1), stride (1, ``stride``, ``stride``), no bias): D(2+1)D's first batch norm, ReLU and spatial conv,
    whose intermediate ``relu(bn(x))`` is never written out (formed frame by frame in cache, forward and
    backward). Returns the output (differentiable in ``x`` and the three weights) and the float64 batch mean and
    biased variance (C,)."""
    _check("x", x)
    c = x.shape[-1]
    if x.dim() != 5 or conv_weight.shape != (c, 1, 1, 3, 3) or stride < 1:
        raise ValueError(f"expected (N, T, H, W, C) x, a (C, 1, 1, 3, 3) weight and stride >= 1, got "
                         f"{tuple(x.shape)}, {tuple(conv_weight.shape)} and {stride}")
    return _BatchNormReluDepthwise.apply(x, bn_weight, bn_bias, conv_weight, lib, eps, stride)
