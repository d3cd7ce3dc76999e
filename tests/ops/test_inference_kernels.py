"""The inference kernels (``ops/csrc/inference_kernels.c`` via ``vov3d.ops.inference_kernels``) against torch's ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vov3d.ops import inference_kernels
from vov3d.ops.library import has_bf16, load_library


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = load_library(tmp_path_factory.mktemp("kernels"))
    assert lib is not None, "the test machine has a C compiler: the kernels must build"
    return lib


def reference_depthwise_st(x, temporal, spatial, bias, stride, relu_in, silu_out):
    """conv3d 1x3x3 then kt x 1 x 1, as the model runs them (NCDHW)."""
    d = x.shape[-1]
    kt = temporal.shape[0]
    xc = (x.relu() if relu_in else x).permute(0, 4, 1, 2, 3).double()
    y = F.conv3d(xc, spatial.t().reshape(d, 1, 1, 3, 3).double(), None, (1, stride, stride), (0, 1, 1), groups=d)
    y = F.conv3d(y, temporal.t().reshape(d, 1, kt, 1, 1).double(), bias.double(), 1, (kt // 2, 0, 0), groups=d)
    y = y.permute(0, 2, 3, 4, 1)
    return F.silu(y) if silu_out else y, y.sum(dim=(2, 3))


@pytest.mark.parametrize(
    "shape,kt,stride",
    [
        ((1, 4, 9, 11, 48), 3, 1),
        ((2, 5, 9, 11, 48), 3, 2),
        ((1, 1, 6, 7, 20), 3, 1),  # one frame; 20 channels: a vector of 16 and a scalar tail
        ((1, 2, 8, 8, 7), 3, 2),  # fewer channels than a vector
        ((1, 6, 5, 4, 32), 5, 1),  # five taps (the stem's)
        ((1, 6, 5, 4, 24), 7, 1),  # seven taps: 4 to 6 frames in reach, past the unrolled cases
    ],
)
@pytest.mark.parametrize("relu_in,silu_out", [(True, False), (False, True)])
def test_depthwise_st_equals_the_two_convolutions(lib, shape, kt, stride, relu_in, silu_out):
    g = torch.Generator().manual_seed(0)
    d = shape[-1]
    x, temporal, spatial, bias = (torch.randn(s, generator=g) for s in (shape, (kt, d), (9, d), (d,)))
    y, sums = inference_kernels.depthwise_st(lib, x, temporal, spatial, bias, stride, relu_in, silu_out, frame_sums=True)
    expected, expected_sums = reference_depthwise_st(x, temporal, spatial, bias, stride, relu_in, silu_out)
    assert y.shape == expected.shape
    torch.testing.assert_close(y.double(), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(sums.double(), expected_sums, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "shape,dim,stride", [((1, 5, 9, 11, 12), 48, 2), ((1, 3, 7, 6, 8), 20, 1), ((1, 1, 4, 4, 5), 7, 2)]
)
@pytest.mark.parametrize("band", [1, 2, None])
def test_d2plus1d_equals_pointwise_then_depthwise(lib, shape, dim, stride, band):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=g)
    weight, bias = inference_kernels.pack_weight(torch.randn(shape[-1], dim, generator=g), torch.randn(dim, generator=g))
    temporal, spatial, dw_bias = (torch.randn(s, generator=g) for s in ((3, dim), (9, dim), (dim,)))
    for silu_out in (False, True):
        y, sums = inference_kernels.d2plus1d(
            lib, x, weight, bias, dim, temporal, spatial, dw_bias, stride, silu_out, frame_sums=True, band=band
        )
        pointwise = x.reshape(-1, shape[-1]).double() @ weight[:, :dim].double() + bias[:dim].double()
        expected, expected_sums = reference_depthwise_st(
            pointwise.float().view(*shape[:4], dim), temporal, spatial, dw_bias, stride, True, silu_out
        )
        torch.testing.assert_close(y.double(), expected, rtol=0, atol=1e-4)
        assert sums.shape == (-(-y.shape[2] // (band or inference_kernels.band_rows(y.shape[2]))), *expected_sums.shape[1:])
        torch.testing.assert_close(sums.double().sum(0, keepdim=True), expected_sums, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("rows,n", [(37, 13), (64, 24), (21, 48), (9, 56), (8, 100)])
def test_gemm_with_column_blocks_swish_residual_and_relu(lib, rows, n):
    g = torch.Generator().manual_seed(2)
    buffer = torch.randn(rows, 70, generator=g)
    parts = [buffer[:, 3:27], torch.randn(rows, 9, generator=g)]  # a strided slice and a contiguous block
    k = 24 + 9
    weight, bias = torch.randn(k, n, generator=g), torch.randn(n, generator=g)
    scale = torch.rand(k, generator=g) + 0.5
    residual = torch.randn(rows, n + 5, generator=g)[:, 5:]
    out_buffer = torch.full((rows, n + 4), 7.0)
    out = out_buffer[:, 2 : 2 + n]
    packed, packed_bias = inference_kernels.pack_weight(weight, bias)
    got = inference_kernels.gemm(lib, parts, packed, packed_bias, n, scale=scale, residual=residual, relu=True, out=out)
    a = torch.cat(parts, dim=1).double()
    expected = (F.silu(a * scale.double()) @ weight.double() + bias.double() + residual.double()).relu()
    assert got.data_ptr() == out.data_ptr()
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)
    # Only the slice was written.
    assert (out_buffer[:, :2] == 7).all() and (out_buffer[:, 2 + n :] == 7).all()
    # Plain product: no scale, no residual, no ReLU.
    plain = inference_kernels.gemm(lib, parts[1], *inference_kernels.pack_weight(weight[24:], bias), n)
    expected_plain = parts[1].double() @ weight[24:].double() + bias.double()
    torch.testing.assert_close(plain.double(), expected_plain, rtol=1e-5, atol=1e-4)


def test_gemm_reads_a_spatially_strided_view_in_place(lib):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 3, 8, 10, 20, generator=g)
    strided = x[0, :, ::2, ::2]  # (3, 4, 5, 20): rows of 5 pixels, 3 x 4 groups evenly spaced
    rows = strided.view(-1, 5, 20)
    weight, bias = torch.randn(20, 24, generator=g), torch.randn(24, generator=g)
    got = inference_kernels.gemm(lib, rows, *inference_kernels.pack_weight(weight, bias), 24, relu=True)
    expected = (strided.reshape(-1, 20).double() @ weight.double() + bias.double()).relu()
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="a: expected contiguous rows"):
        inference_kernels.gemm(lib, rows.transpose(1, 2), *inference_kernels.pack_weight(torch.randn(5, 24), bias), 24)


@pytest.mark.parametrize(
    "shape,d,kt,stride,band",
    [
        ((1, 3, 6, 17, 23), 24, 5, 2, None),
        ((1, 3, 2, 8, 8), 13, 5, 1, 3),
        ((1, 2, 4, 9, 30), 40, 3, 2, 1),
        ((1, 3, 3, 7, 70), 20, 5, 2, 2),  # blocks of 8 pixels inside the row read it in place, the ends a copy
        ((1, 1, 2, 5, 41), 24, 1, 1, None),
    ],
)
def test_stem_reads_the_input_layout_and_equals_the_convolutions(lib, shape, d, kt, stride, band):
    g = torch.Generator().manual_seed(8)
    x = torch.randn(shape, generator=g)
    weight = torch.randn(d, shape[1], 1, 3, 3, generator=g)
    temporal, bias = torch.randn(kt, d, generator=g), torch.randn(d, generator=g)
    packed, _ = inference_kernels.pack_weight(weight.reshape(d, -1).t(), torch.zeros(d))
    got = inference_kernels.stem(lib, x, packed, temporal, bias, stride, band)
    y = F.conv3d(x.double(), weight.double(), None, (1, stride, stride), (0, 1, 1))
    y = F.conv3d(y, temporal.t().reshape(d, 1, kt, 1, 1).double(), bias.double(), 1, (kt // 2, 0, 0), groups=d)
    expected = y.relu().permute(0, 2, 3, 4, 1)
    assert got.shape == expected.shape
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-4)


def _bf16(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).double()


@pytest.mark.parametrize("rows,n,k2", [(37, 13, 9), (64, 24, 9), (21, 20, 10), (9, 56, 1), (8, 100, 40)])
def test_bf16_gemm_is_the_product_of_the_rounded_inputs(lib, rows, n, k2):
    if not has_bf16(lib):
        pytest.skip("this CPU has no AVX512_BF16")
    g = torch.Generator().manual_seed(5)
    buffer = torch.randn(rows, 40, generator=g)
    parts = [buffer[:, 3:27], torch.randn(rows, k2, generator=g)]  # K = 24 + k2: odd and even
    a = torch.cat(parts, dim=1)
    k = a.shape[1]
    weight, bias, residual = (torch.randn(s, generator=g) for s in ((k, n), (n,), (rows, n)))
    packed, packed_bias = inference_kernels.pack_weight(weight, bias, torch.bfloat16)
    assert packed.dtype == torch.bfloat16 and packed.shape == ((k + 1) // 2, -(-n // 8) * 8, 2)
    # Without pre: exactly the float64 product of the bfloat16-rounded inputs, up to float32 sums.
    got = inference_kernels.gemm(lib, parts, packed, packed_bias, n, residual=residual, relu=True)
    expected = (_bf16(a) @ _bf16(weight) + bias.double() + residual.double()).relu()
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)
    assert (got.double() - (a.double() @ weight.double() + bias + residual).relu()).abs().max() > 1e-3  # rounded
    # With SE scaling + Swish: its output is rounded, so a value next to a rounding boundary may round
    # the other way than torch's Swish does (one bfloat16 step, 2^-8 relative).
    scale = torch.rand(k, generator=g) + 0.5
    got = inference_kernels.gemm(lib, parts, packed, packed_bias, n, scale=scale)
    pre = F.silu(a.double() * scale.double())
    expected = _bf16(pre) @ _bf16(weight) + bias.double()
    bound = 2**-8 * (pre.abs() @ weight.double().abs()) + 1e-4
    assert ((got.double() - expected).abs() <= bound).all()


def test_bf16_d2plus1d_equals_bf16_gemm_then_depthwise(lib):
    if not has_bf16(lib):
        pytest.skip("this CPU has no AVX512_BF16")
    g = torch.Generator().manual_seed(6)
    x = torch.randn(1, 4, 9, 7, 11, generator=g)
    w, b = torch.randn(11, 20, generator=g), torch.randn(20, generator=g)
    weight, bias = inference_kernels.pack_weight(w, b, torch.bfloat16)
    temporal, spatial, dw_bias = (torch.randn(s, generator=g) for s in ((3, 20), (9, 20), (20,)))
    for stride in (1, 2):
        y, sums = inference_kernels.d2plus1d(
            lib, x, weight, bias, 20, temporal, spatial, dw_bias, stride, frame_sums=True, band=2
        )
        pointwise = inference_kernels.gemm(lib, x.view(-1, 11), weight, bias, 20).view(1, 4, 9, 7, 20)
        y2, sums2 = inference_kernels.depthwise_st(lib, pointwise, temporal, spatial, dw_bias, stride, frame_sums=True)
        torch.testing.assert_close(y, y2, rtol=0, atol=1e-5)
        torch.testing.assert_close(sums.sum(0, keepdim=True), sums2, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("d", [40, 20, 10])  # whole vectors, an overlapping last vector, less than one vector
def test_bf16_outputs_are_the_float32_outputs_rounded_and_gemm_reads_them_in_place(lib, d):
    """The depthwise passes' bfloat16 output (layers without SE in the bfloat16 network) is their float32 output
    rounded to nearest even, and a bfloat16 product reads it as it is: as if from its float32 values."""
    if not has_bf16(lib):
        pytest.skip("this CPU has no AVX512_BF16")
    g = torch.Generator().manual_seed(9)
    x, x_in = torch.randn(1, 4, 9, 10, d, generator=g), torch.randn(1, 4, 9, 10, 12, generator=g)
    temporal, spatial, bias = (torch.randn(s, generator=g) for s in ((3, d), (9, d), (d,)))
    pw, pw_bias = inference_kernels.pack_weight(torch.randn(12, d, generator=g), torch.randn(d, generator=g), torch.bfloat16)
    for stride in (1, 2):
        for post in ({"silu_out": True, "coarse_silu": True}, {}):
            y32, s32 = inference_kernels.depthwise_st(lib, x, temporal, spatial, bias, stride, frame_sums=True, **post)
            y16, s16 = inference_kernels.depthwise_st(lib, x, temporal, spatial, bias, stride, frame_sums=True,
                                                out_dtype=torch.bfloat16, **post)
            assert y16.dtype == torch.bfloat16 and torch.equal(y16, y32.to(torch.bfloat16))
            assert torch.equal(s16, s32)
        y32, _ = inference_kernels.d2plus1d(lib, x_in, pw, pw_bias, d, temporal, spatial, bias, stride, silu_out=True,
                                      coarse_silu=True, band=3)
        y16, _ = inference_kernels.d2plus1d(lib, x_in, pw, pw_bias, d, temporal, spatial, bias, stride, silu_out=True,
                                      coarse_silu=True, band=3, out_dtype=torch.bfloat16)
        assert y16.dtype == torch.bfloat16 and torch.equal(y16, y32.to(torch.bfloat16))
    rows = y16.view(-1, d)  # 100 rows: a last, partial block of 8
    matrix, w_bias = torch.randn(d, 24, generator=g), torch.randn(24, generator=g)
    weight, w_bias = inference_kernels.pack_weight(matrix, w_bias, torch.bfloat16)
    residual = torch.randn(rows.shape[0], 24, generator=g)
    got = inference_kernels.gemm(lib, rows, weight, w_bias, 24, residual=residual, relu=True)
    assert torch.equal(got, inference_kernels.gemm(lib, rows.float(), weight, w_bias, 24, residual=residual, relu=True))
    expected = (rows.double() @ _bf16(matrix) + w_bias[:24].double() + residual.double()).relu()
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)
    wide = torch.randn(rows.shape[0], d + 6, generator=g).to(torch.bfloat16)[:, 2 : 2 + d]  # rows d + 6 apart
    assert torch.equal(inference_kernels.gemm(lib, wide, weight, w_bias, 24),
                       inference_kernels.gemm(lib, wide.float(), weight, w_bias, 24))


@pytest.mark.parametrize("bf16,io_bf16", [(False, False), (True, False), (True, True)])
def test_d2plus1d_layer_makes_the_same_kernel_calls_in_one(lib, bf16, io_bf16):
    """A whole layer in one call equals gemm + depthwise_st (or d2plus1d) + se_gate + gemm made one by one,
    bitwise: with and without SE, residual, stride 2, both sides of the one-pass threshold; float32 or (in a
    bfloat16 VoV3D) bfloat16 input, residual and output."""
    if bf16 and not has_bf16(lib):
        pytest.skip("this CPU has no AVX512_BF16")
    dtype = torch.bfloat16 if bf16 else torch.float32
    io = torch.bfloat16 if io_bf16 else torch.float32
    g = torch.Generator().manual_seed(10)
    t, h, w, cin, d = 3, 9, 7, 12, 20
    x = torch.randn(t * h * w, cin, generator=g).to(io)
    a = inference_kernels.pack_weight(torch.randn(cin, d, generator=g) * 0.3, torch.randn(d, generator=g), dtype)
    depthwise = tuple(torch.randn(s, generator=g) for s in ((3, d), (9, d), (d,)))
    se = (torch.randn(d, 8, generator=g), torch.randn(8, generator=g), torch.randn(8, d, generator=g),
          torch.randn(d, generator=g))
    for with_se, stride, residual in ((True, 1, True), (False, 1, True), (True, 2, False), (False, 2, False)):
        cout = cin if residual else 16
        c = inference_kernels.pack_weight(torch.randn(d, cout, generator=g) * 0.3, torch.randn(cout, generator=g), dtype)
        post = {"silu_out": not with_se, "coarse_silu": bf16,
                "dw_dtype": torch.bfloat16 if bf16 else torch.float32}
        weights = inference_kernels.layer_weights(lib, a, depthwise, stride, se if with_se else None, c, (cin, d, cout),
                                            residual, **post, in_dtype=io, out_dtype=io)
        post["out_dtype"] = post.pop("dw_dtype")  # as depthwise_st and d2plus1d call it
        for one_pass in (True, False):
            got = inference_kernels.d2plus1d_layer(lib, weights, x, (t, h, w), 0 if one_pass else 1 << 40)
            if one_pass:
                y, sums = inference_kernels.d2plus1d(lib, x.view(1, t, h, w, cin), *a, d, *depthwise, stride,
                                               frame_sums=with_se, **post)
            else:
                y = inference_kernels.gemm(lib, x, *a, d).view(1, t, h, w, d)
                y, sums = inference_kernels.depthwise_st(lib, y, *depthwise, stride, relu_in=True, frame_sums=with_se,
                                                   **post)
            gate = inference_kernels.se_gate(lib, sums, y[0, 0].numel() // d * t, *se) if with_se else None
            expected = inference_kernels.gemm(lib, y.view(-1, d), *c, cout, scale=gate, residual=x if residual else None,
                                        relu=True, out_dtype=io)
            assert got.dtype == io and torch.equal(got, expected), (with_se, stride, residual, one_pass)
    with pytest.raises(ValueError, match="a residual needs C_in == C_out and stride 1"):
        inference_kernels.layer_weights(lib, a, depthwise, 1, None, c, (cin, d, cout), True, silu_out=True)  # 12 != 16
    with pytest.raises(ValueError, match=r"x: expected shape \(189, 12\)"):
        inference_kernels.d2plus1d_layer(lib, weights, x[:-1], (t, h, w), 0)
    other = torch.float32 if io_bf16 else torch.bfloat16
    with pytest.raises(ValueError, match=f"x: expected {io} \\(layer_weights' in_dtype\\), got {other}"):
        inference_kernels.d2plus1d_layer(lib, weights, x.to(other), (t, h, w), 0)


def test_bf16_activations_equal_the_float32_ones_rounded(lib):
    """The bfloat16 VoV3D's activations: the kernels' bfloat16 outputs (gemm, stem) are their float32 outputs
    rounded, and their bfloat16 inputs (gemm's column blocks, strided view and residual, d2plus1d's input) give
    what the float32 inputs of the same values give, bitwise."""
    if not has_bf16(lib):
        pytest.skip("this CPU has no AVX512_BF16")
    g = torch.Generator().manual_seed(12)
    r16 = lambda *shape: torch.randn(*shape, generator=g).to(torch.bfloat16)  # noqa: E731
    parts = [r16(101, 20), r16(101, 7), r16(101, 30)]  # an odd K, a last partial block of rows
    weight, bias = inference_kernels.pack_weight(torch.randn(57, 20, generator=g), torch.randn(20, generator=g),
                                           torch.bfloat16)
    residual = r16(101, 20)
    got = inference_kernels.gemm(lib, parts, weight, bias, 20, residual=residual, relu=True, out_dtype=torch.bfloat16)
    f32 = inference_kernels.gemm(lib, [p.float() for p in parts], weight, bias, 20, residual=residual.float(), relu=True)
    assert got.dtype == torch.bfloat16 and torch.equal(got, f32.to(torch.bfloat16))
    scale = torch.rand(57, generator=g) + 0.5  # SE's scaling + Swish, applied to the widened values
    assert torch.equal(inference_kernels.gemm(lib, parts, weight, bias, 20, scale=scale),
                       inference_kernels.gemm(lib, [p.float() for p in parts], weight, bias, 20, scale=scale))
    shortcut = inference_kernels.pack_weight(torch.randn(12, 20, generator=g), torch.zeros(20), torch.bfloat16)
    x = r16(1, 4, 10, 9, 12)
    strided = x[0, :, ::2, ::2]  # a stride-2 shortcut's (T, Ho, Wo, C) view, read in place as rows in groups
    view = strided.view(-1, strided.shape[2], 12)
    assert torch.equal(inference_kernels.gemm(lib, view, *shortcut, 20), inference_kernels.gemm(lib, view.float(), *shortcut, 20))
    dw = (torch.randn(3, 20, generator=g), torch.randn(9, 20, generator=g), torch.randn(20, generator=g))
    for clip in (x, r16(1, 3, 5, 6, 7)):  # an even and an odd number of input channels
        a = inference_kernels.pack_weight(torch.randn(clip.shape[-1], 20, generator=g), torch.randn(20, generator=g),
                                    torch.bfloat16)
        y16, _ = inference_kernels.d2plus1d(lib, clip, *a, 20, *dw, 2, band=2)
        y32, _ = inference_kernels.d2plus1d(lib, clip.float(), *a, 20, *dw, 2, band=2)
        assert torch.equal(y16, y32)
    stem_in = torch.randn(1, 3, 4, 18, 18, generator=g)
    stem_w, _ = inference_kernels.pack_weight(torch.randn(27, 24, generator=g), torch.zeros(24))
    stem = (stem_w, torch.randn(5, 24, generator=g), torch.randn(24, generator=g))
    y16 = inference_kernels.stem(lib, stem_in, *stem, out_dtype=torch.bfloat16)
    assert y16.dtype == torch.bfloat16 and torch.equal(y16, inference_kernels.stem(lib, stem_in, *stem).to(torch.bfloat16))
    with pytest.raises(ValueError, match="a\\[1\\]: expected bfloat16 like a\\[0\\]"):
        inference_kernels.gemm(lib, [parts[0], parts[1].float()], weight, bias, 20)
    with pytest.raises(ValueError, match="x: a bfloat16 x needs a bfloat16 weight"):
        inference_kernels.d2plus1d(lib, x, *inference_kernels.pack_weight(torch.randn(12, 20), torch.zeros(20)), 20, *dw)
    f32_weight = inference_kernels.pack_weight(torch.randn(57, 20), torch.zeros(20))
    with pytest.raises(ValueError, match="out_dtype: expected torch.float32 \\(bfloat16 needs a bfloat16 weight"):
        inference_kernels.gemm(lib, [p.float() for p in parts], *f32_weight, 20, out_dtype=torch.bfloat16)


def test_coarse_swish_is_within_2e4_of_swish_and_keeps_nan(lib):
    """The cheaper Swish of the bfloat16 path (silu16_coarse): error far below bfloat16's rounding (up to 2^-8)."""
    g = torch.Generator().manual_seed(8)
    x = torch.randn(1, 4, 9, 10, 40, generator=g) * 4
    x[0, 2, 4, 5, 17] = float("nan")
    temporal, spatial, bias = (torch.randn(s, generator=g) for s in ((3, 40), (9, 40), (40,)))
    weight, pw_bias = inference_kernels.pack_weight(torch.randn(40, 40, generator=g) * 0.3, torch.randn(40, generator=g))
    for stride in (1, 2):
        exact, _ = inference_kernels.depthwise_st(lib, x, temporal, spatial, bias, stride, silu_out=True)
        coarse, _ = inference_kernels.depthwise_st(lib, x, temporal, spatial, bias, stride, silu_out=True, coarse_silu=True)
        assert torch.equal(coarse.isnan(), exact.isnan()) and exact.isnan().any()
        ok = ~exact.isnan()
        torch.testing.assert_close(coarse[ok], exact[ok], rtol=2e-4, atol=1e-6)
        x2 = x.nan_to_num()
        exact, _ = inference_kernels.d2plus1d(lib, x2, weight, pw_bias, 40, temporal, spatial, bias, stride, silu_out=True)
        coarse, _ = inference_kernels.d2plus1d(lib, x2, weight, pw_bias, 40, temporal, spatial, bias, stride, silu_out=True,
                                         coarse_silu=True)
        torch.testing.assert_close(coarse, exact, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("c,cse,rows", [(48, 8, 16), (20, 8, 1), (7, 3, 5)])
def test_se_gate_equals_the_squeeze_excitation_module(lib, c, cse, rows):
    g = torch.Generator().manual_seed(7)
    sums = torch.randn(rows, c, generator=g) * 50
    w1, b1, w2, b2 = (torch.randn(s, generator=g) for s in ((c, cse), (cse,), (cse, c), (c,)))
    gate = inference_kernels.se_gate(lib, sums, 123, w1, b1, w2, b2)
    mean = sums.double().sum(0) / 123
    expected = torch.sigmoid(torch.relu(mean @ w1.double() + b1.double()) @ w2.double() + b2.double())
    torch.testing.assert_close(gate.double(), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="w2"):
        inference_kernels.se_gate(lib, sums, 123, w1, b1, w2.t().contiguous(), b2)


def test_nan_propagates_through_relu_as_in_torch(lib):
    x = torch.zeros(1, 3, 5, 5, 16)
    x[0, 1, 2, 2, 3] = float("nan")
    y, _ = inference_kernels.depthwise_st(lib, x, torch.ones(3, 16), torch.ones(9, 16), torch.zeros(16), relu_in=True)
    assert torch.isnan(y[0, :, 1:4, 1:4, 3]).all() and torch.isnan(y).sum() == 27
    a = torch.zeros(9, 8)
    a[4, 0] = float("nan")
    out = inference_kernels.gemm(lib, a, *inference_kernels.pack_weight(torch.ones(8, 24), torch.zeros(24)), 24, relu=True)
    assert torch.isnan(out[4]).all() and torch.isnan(out).sum() == 24


def test_kernels_reject_bad_input_with_the_argument_named(lib):
    x = torch.randn(1, 2, 4, 4, 16)
    temporal, spatial, bias = torch.randn(3, 16), torch.randn(9, 16), torch.randn(16)
    with pytest.raises(ValueError, match="x: expected a float32"):
        inference_kernels.depthwise_st(lib, x.double(), temporal, spatial, bias)
    with pytest.raises(ValueError, match="x: expected a contiguous"):
        inference_kernels.depthwise_st(lib, x.transpose(2, 3), temporal, spatial, bias)
    with pytest.raises(ValueError, match=r"spatial: expected shape \(9, 16\)"):
        inference_kernels.depthwise_st(lib, x, temporal, torch.randn(9, 8), bias)
    weight, b = inference_kernels.pack_weight(torch.randn(16, 5), torch.randn(5))
    with pytest.raises(ValueError, match="weight: expected"):
        inference_kernels.gemm(lib, torch.randn(4, 12), weight, b, 5)
    with pytest.raises(ValueError, match="a\\[0\\]: expected"):
        inference_kernels.gemm(lib, torch.randn(16, 4).t(), weight, b, 5)
    with pytest.raises(ValueError, match="weight: expected a float32 or bfloat16"):
        inference_kernels.gemm(lib, torch.randn(4, 16), weight.double(), b, 5)
    with pytest.raises(ValueError, match="dtype: expected"):
        inference_kernels.pack_weight(torch.randn(16, 5), torch.randn(5), torch.float16)
    if has_bf16(lib):
        weight16, b16 = inference_kernels.pack_weight(torch.randn(16, 5), torch.randn(5), torch.bfloat16)
        with pytest.raises(ValueError, match=r"weight: expected a contiguous \(9, 8, 2\)"):
            inference_kernels.gemm(lib, torch.randn(4, 17), weight16, b16, 5)
        a16 = torch.randn(4, 16).to(torch.bfloat16)
        with pytest.raises(ValueError, match=r"a\[0\]: expected a bfloat16 CPU matrix with contiguous rows"):
            inference_kernels.gemm(lib, torch.randn(16, 4).to(torch.bfloat16).t(), weight16, b16, 5)
        with pytest.raises(ValueError, match="a: a bfloat16 input needs a bfloat16 weight"):
            inference_kernels.gemm(lib, a16, weight, b, 5)
    with pytest.raises(ValueError, match="out_dtype: expected torch.float32, or torch.bfloat16"):
        inference_kernels.depthwise_st(lib, x, temporal, spatial, bias, out_dtype=torch.float16)
