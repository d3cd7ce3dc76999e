"""The inference kernels (``csrc/inference_kernels.c``) as functions of tensors: float32 (and bfloat16
products) on channels-last (N, T, H, W, C) tensors, each taking the kernel library ``lib``
(``vov3d.ops.library.load_library``). ``vov3d.accel.kernel_network`` runs whole models with them.

* ``depthwise_st``: D(2+1)D's two depthwise stages (1x3x3 spatial, kt x 1 x 1 temporal) and their bias in
  one pass, with the preceding ReLU applied on load and, optionally, Swish on store and per-frame sums
  for squeeze-excitation: 2-5.6x faster than oneDNN's 2D depthwise conv, a shift-add and Swish;
* ``gemm``: a 1x1x1 conv as a matrix product with what surrounds it fused: SE scaling and Swish of its
  input, bias, residual add and ReLU; its input may be several column blocks (T-OSA's aggregation reads
  the layers' outputs where they are) and its rows strided. It runs VoV3D's narrow products (24-96
  channels) at 160-210 GFLOP/s where MKL reaches 85-190. With a bfloat16 weight (``pack_weight(...,
  torch.bfloat16)``, CPUs with AVX512_BF16: ``has_bf16``) its inputs are rounded to bfloat16 as they
  are read and multiplied by AVX512_BF16's pair dot products, float32 sums, up to twice as fast;
* ``d2plus1d``: the layer's first 1x1x1 conv inside the depthwise pass, band by band, for layers whose
  1x1x1 output would not stay in cache (1.3-1.5x faster there); both depthwise kernels can store their
  output as bfloat16 (``out_dtype``), which a bfloat16 ``gemm`` then reads in place;
* ``stem``: the X3D stem (1x3x3 conv, temporal conv, folded BN, ReLU) in one pass, read straight from
  the (N, C, T, H, W) input;
* ``se_gate``: squeeze-excitation's gate of one clip from its per-frame sums, in one call;
* ``d2plus1d_layer``: a whole D(2+1)D layer (the calls above, one by one) in one call from Python, with its
  weights gathered once (``layer_weights``).

(Ratios from ``benchmarks/kernels.py``, ``benchmarks/RESULTS.md``.)

Why hand-written: no library we can use fuses the two depthwise stages (the point of D(2+1)D, spec
§2.3) or runs these narrow products with their neighbours fused; oneDNN and inductor run them as
separate passes over memory.
"""

from __future__ import annotations

import ctypes
from typing import Sequence

import torch

from vov3d.ops.library import MAX_TAPS, LayerWeights, has_bf16

__all__ = [
    "LayerWeights", "band_rows", "d2plus1d", "d2plus1d_layer", "depthwise_st", "gemm", "layer_weights",
    "pack_weight", "se_gate", "stem",
]


_DTYPES = (torch.float32, torch.bfloat16)  # by the kernels' 0/1 bfloat16 flags
_FLOAT32 = (torch.float32,)


def _check(
    name: str, t: torch.Tensor, shape: tuple[int, ...] | None = None, contiguous: bool = True,
    dtypes: tuple[torch.dtype, ...] = _FLOAT32,
) -> int:
    """A CPU tensor of one of ``dtypes`` (float32 first), contiguous unless told, of ``shape`` if given; returns 1
    if it is bfloat16 (the kernels' flag), else 0."""
    # is_cpu, not device.type, and shape compared as it is: these checks run on every kernel call.
    if t.dtype not in dtypes or not t.is_cpu:
        kinds = " or ".join(str(dt).removeprefix("torch.") for dt in dtypes)
        raise ValueError(f"{name}: expected a {kinds} CPU tensor, got {t.dtype} on {t.device}")
    if contiguous and not t.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous tensor")
    if shape is not None and t.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(t.shape)}")
    return int(t.dtype == torch.bfloat16)


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _check_depthwise(
    temporal: torch.Tensor, spatial: torch.Tensor, bias: torch.Tensor, d: int, stride: int, bias_name: str = "bias"
) -> int:
    """Check the depthwise weights of a D-channel layer; returns the number of temporal taps."""
    kt = temporal.shape[0]
    _check("temporal", temporal, (kt, d))
    _check("spatial", spatial, (9, d))
    _check(bias_name, bias, (d,))
    if kt > MAX_TAPS or stride < 1:
        raise ValueError(f"expected at most {MAX_TAPS} temporal taps and stride >= 1, got {kt} and {stride}")
    return kt


def _silu_mode(silu_out: bool, coarse: bool) -> int:
    """The kernels' silu_out: 0 none, 1 exact (float32 accuracy), 2 coarse (silu16_coarse, for bfloat16 inputs)."""
    return 0 if not silu_out else 2 if coarse else 1


def _bf16_flag(lib: ctypes.CDLL, dtype: torch.dtype, name: str = "out_dtype") -> int:
    """The kernels' 0/1 bfloat16 flag for ``dtype`` (float32, or bfloat16 where ``has_bf16(lib)``)."""
    if dtype is torch.float32:
        return 0
    if dtype is not torch.bfloat16 or not has_bf16(lib):
        raise ValueError(f"{name}: expected torch.float32, or torch.bfloat16 with has_bf16(lib), got {dtype}")
    return 1


def depthwise_st(
    lib: ctypes.CDLL,
    x: torch.Tensor,
    temporal: torch.Tensor,
    spatial: torch.Tensor,
    bias: torch.Tensor,
    stride: int = 1,
    relu_in: bool = True,
    silu_out: bool = False,
    frame_sums: bool = False,
    coarse_silu: bool = False,
    out_dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``bias + spatial(temporal(act(x)))`` for (N, T, H, W, D) ``x``; see the C source.

    ``temporal``: (kt, D) taps (zero padding kt // 2); ``spatial``: (9, D), 3x3 taps row-major (padding 1,
    stride ``stride``); ``bias``: (D,). Returns (N, T, Ho, Wo, D) and, if ``frame_sums``, the (N, T, D)
    sums of the output over each frame (before Swish). ``coarse_silu``: the Swish to about 1.5e-4 relative,
    cheaper, for an output that only bfloat16 products read (their rounding error is up to 2^-8).
    ``out_dtype`` bfloat16: the output rounded to bfloat16 (nearest even), which ``gemm`` reads as it is.
    """
    _check("x", x)
    if x.dim() != 5:
        raise ValueError(f"x: expected (N, T, H, W, D), got shape {tuple(x.shape)}")
    n, t, h, w, d = x.shape
    kt = _check_depthwise(temporal, spatial, bias, d, stride)
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    y = torch.empty(n, t, ho, wo, d, dtype=out_dtype)
    sums = torch.empty(n, t, d) if frame_sums else None
    lib.vov3d_depthwise_st(
        x.data_ptr(), temporal.data_ptr(), kt, spatial.data_ptr(), bias.data_ptr(), y.data_ptr(), _ptr(sums),
        n, t, h, w, d, stride, int(relu_in), _silu_mode(silu_out, coarse_silu), _bf16_flag(lib, out_dtype),
    )
    return y, sums


def se_gate(
    lib: ctypes.CDLL,
    sums: torch.Tensor,
    count: int,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
) -> torch.Tensor:
    """Squeeze-excitation's (C,) gate of one clip, ``sigmoid(relu(mean @ w1 + b1) @ w2 + b2)``, from the (..., C)
    sums of its activations over ``count`` positions in all (per-frame sums, or per band and frame):
    ``mean = sums summed over all but the last dim / count``. ``w1``: (C, C_se) and ``w2``: (C_se, C), the
    squeeze and excite convs' weights transposed."""
    _check("sums", sums)
    c = sums.shape[-1]
    cse = b1.shape[0]
    _check("w1", w1, (c, cse))
    _check("b1", b1, (cse,))
    _check("w2", w2, (cse, c))
    _check("b2", b2, (c,))
    gate = torch.empty(c)
    lib.vov3d_se_gate(sums.data_ptr(), sums.numel() // c, c, 1.0 / count, w1.data_ptr(), b1.data_ptr(), cse,
                      w2.data_ptr(), b2.data_ptr(), gate.data_ptr())
    return gate


def band_rows(ho: int, threads: int | None = None) -> int:
    """Output rows per task of ``d2plus1d``: two tasks per thread. Larger bands recompute fewer halo rows
    (measured: bands of 1-4 rows were up to 1.5x slower than 16) and still fit in the last-level cache."""
    threads = threads or torch.get_num_threads()
    return max(1, -(-ho // (2 * threads)))


def d2plus1d(
    lib: ctypes.CDLL,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    dim: int,
    temporal: torch.Tensor,
    spatial: torch.Tensor,
    dw_bias: torch.Tensor,
    stride: int = 1,
    silu_out: bool = False,
    frame_sums: bool = False,
    band: int | None = None,
    coarse_silu: bool = False,
    out_dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``depthwise_st(gemm(x, weight, bias, dim), ...)`` with ``relu_in``, for one clip, without writing the
    1x1x1 conv's output: x (1, T, H, W, C_in) contiguous (bfloat16 with a bfloat16 ``weight``: read as it is);
    ``weight``, ``bias`` from ``pack_weight``;
    ``band`` output rows per task (default ``band_rows``). Returns (1, T, Ho, Wo, dim) and, if ``frame_sums``, the
    (bands, T, dim) sums of the output over each band of each frame (before Swish; ``.sum(0)`` gives the frame
    sums). ``coarse_silu`` and ``out_dtype`` as in ``depthwise_st``."""
    x_bf16 = _check("x", x, dtypes=_DTYPES)
    if x.dim() != 5 or x.shape[0] != 1:
        raise ValueError(f"x: expected one clip (1, T, H, W, C), got shape {tuple(x.shape)}")
    _, t, h, w, cin = x.shape
    padded = -(-dim // 8) * 8
    bf16 = _check_weight(lib, weight, cin, padded)
    if x_bf16 and not bf16:
        raise ValueError("x: a bfloat16 x needs a bfloat16 weight (pack_weight)")
    _check("bias", bias, (padded,))
    kt = _check_depthwise(temporal, spatial, dw_bias, dim, stride, bias_name="dw_bias")
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    band = band or band_rows(ho)
    bands = -(-ho // band)
    y = torch.empty(1, t, ho, wo, dim, dtype=out_dtype)
    sums = torch.empty(bands, t, dim) if frame_sums else None
    lib.vov3d_d2plus1d(
        x.data_ptr(), cin, weight.data_ptr(), 2 if x_bf16 else bf16, padded, bias.data_ptr(), temporal.data_ptr(), kt,
        spatial.data_ptr(), dw_bias.data_ptr(), y.data_ptr(), _ptr(sums), t, h, w, dim, stride, band,
        _silu_mode(silu_out, coarse_silu), _bf16_flag(lib, out_dtype),
    )
    return y, sums


def stem(
    lib: ctypes.CDLL,
    x: torch.Tensor,
    weight: torch.Tensor,
    temporal: torch.Tensor,
    bias: torch.Tensor,
    stride: int = 2,
    band: int | None = None,
    out_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The X3D stem of one clip in one pass: ``relu(bias + temporal(spatial(x)))``.

    ``x``: (1, C, T, H, W) contiguous, the network's input layout. ``spatial``: the 1x3x3 conv (padding 1,
    spatial ``stride``, no bias), ``weight`` its (C * 9, D) matrix ``conv.weight.reshape(D, -1).t()``
    packed by ``pack_weight`` (float32). ``temporal``: (kt, D) taps of the depthwise kt x 1 x 1 conv (zero
    padding kt // 2); ``bias``: (D,). ``band``: output rows per task (default: the ring of kt frames' rows
    in about 512 KB, the same number of tasks per thread). Returns (1, T, Ho, Wo, D) channels last, of
    ``out_dtype`` (bfloat16: rounded to nearest even, for bfloat16 products to read as it is).
    """
    _check("x", x)
    if x.dim() != 5 or x.shape[0] != 1:
        raise ValueError(f"x: expected one clip (1, C, T, H, W), got shape {tuple(x.shape)}")
    _, c, t, h, w = x.shape
    kt, d = temporal.shape
    _check("temporal", temporal, (kt, d))
    _check("bias", bias, (d,))
    _check("weight", weight, (c * 9, -(-d // 8) * 8))
    if stride < 1 or c > 16 or kt > MAX_TAPS:
        raise ValueError(f"expected stride >= 1, at most 16 channels and {MAX_TAPS} taps, got {stride}, {c}, {kt}")
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    if band is None:
        threads = torch.get_num_threads()
        max_band = max(1, (1 << 19) // (kt * wo * d * 4))
        tasks = threads * -(-ho // (threads * max_band))
        band = -(-ho // tasks)
    bf16_out = _bf16_flag(lib, out_dtype)
    y = torch.empty(1, t, ho, wo, d, dtype=out_dtype)
    lib.vov3d_stem(
        x.data_ptr(), c, t, h, w, weight.data_ptr(), weight.shape[1], d, temporal.data_ptr(), kt, bias.data_ptr(),
        y.data_ptr(), stride, band, bf16_out,
    )
    return y


def _rows(name: str, m: torch.Tensor, shape: tuple[int, int], dtypes: tuple[torch.dtype, ...] = _FLOAT32) -> int:
    """``_check`` for a (rows, columns) matrix whose rows are contiguous (any row stride); returns its flag."""
    bf16 = _check(name, m, contiguous=False, dtypes=dtypes)
    strides = m.stride()
    if m.shape != shape or strides[1] != 1 or strides[0] < shape[1]:
        raise ValueError(f"{name}: expected a {shape} matrix with contiguous rows, got shape {tuple(m.shape)}")
    return bf16


def pack_weight(
    weight: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """A (K, N) matrix and its (N,) bias as ``gemm`` takes them: N padded with zeros to a multiple of 8.

    float32: the (K, N8) matrix. bfloat16: rounded (to nearest even) and packed in pairs of rows,
    ((K + 1) // 2, N8, 2) with ``[k, c] = (w[2k, c], w[2k + 1, c])``, for AVX512_BF16's pair products
    (``has_bf16``). The bias stays float32.
    """
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"dtype: expected torch.float32 or torch.bfloat16, got {dtype}")
    k, n = weight.shape
    padded = -(-n // 8) * 8
    w = torch.zeros(k + (k % 2 if dtype == torch.bfloat16 else 0), padded, dtype=torch.float32)
    w[:k, :n] = weight
    if dtype == torch.bfloat16:
        w = w.to(torch.bfloat16).view(-1, 2, padded).transpose(1, 2).contiguous()
    b = torch.zeros(padded, dtype=torch.float32)
    b[:n] = bias
    return w, b


def _check_weight(lib: ctypes.CDLL, weight: torch.Tensor, k: int, padded: int) -> int:
    """Check a ``pack_weight`` matrix for K inputs and ``padded`` columns; returns 1 if it is bfloat16, else 0."""
    if weight.dtype not in (torch.float32, torch.bfloat16) or not weight.is_cpu:
        raise ValueError(f"weight: expected a float32 or bfloat16 CPU tensor, got {weight.dtype} on {weight.device}")
    if weight.dtype == torch.bfloat16 and not has_bf16(lib):
        raise ValueError("weight: bfloat16, but this kernel library has no bfloat16 products (no AVX512_BF16)")
    shape = (-(-k // 2), padded, 2) if weight.dtype == torch.bfloat16 else (k, padded)
    if weight.shape != shape or not weight.is_contiguous():
        raise ValueError(f"weight: expected a contiguous {shape} tensor (pack_weight), got shape {tuple(weight.shape)}")
    return int(weight.dtype == torch.bfloat16)


def _check_bf16_input(parts: list[torch.Tensor], weight: torch.Tensor) -> None:
    """bfloat16 ``gemm`` inputs: CPU matrices with contiguous rows (or one (G, R / G, K) view), all bfloat16, with a
    bfloat16 weight (one matrix of an even width and no scale is read as pairs, in place; else the rows are
    copied side by side)."""
    for i, a in enumerate(parts):
        if a.dtype != torch.bfloat16:
            raise ValueError(f"a[{i}]: expected bfloat16 like a[0], got {a.dtype}")
        grouped = len(parts) == 1 and a.dim() == 3 and a.stride(2) == 1
        if not a.is_cpu or not (grouped or a.dim() == 2 and a.stride(1) == 1 and a.stride(0) >= a.shape[1]):
            raise ValueError(f"a[{i}]: expected a bfloat16 CPU matrix with contiguous rows, "
                             f"got shape {tuple(a.shape)}, strides {a.stride()} on {a.device}")
    if weight.dtype != torch.bfloat16:
        raise ValueError("a: a bfloat16 input needs a bfloat16 weight (pack_weight)")


def gemm(
    lib: ctypes.CDLL,
    a: torch.Tensor | Sequence[torch.Tensor],
    weight: torch.Tensor,
    bias: torch.Tensor,
    n: int,
    scale: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    relu: bool = False,
    out: torch.Tensor | None = None,
    out_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``post(pre(A) @ weight[:, :n] + bias[:n] + residual)`` with ``A = torch.cat(a, dim=1)``, never materialised.

    ``a``: one (R, K) matrix or a sequence of (R, K_i) matrices; ``residual`` and ``out``: (R, n); all with
    contiguous rows (any row stride: column slices work); ``weight``, ``bias``: from ``pack_weight``. A
    single ``a`` may also be (G, R / G, K) with any strides but the last (rows in evenly spaced groups:
    a spatially strided view of channels-last activations, read in place). A
    bfloat16 ``weight`` makes the product bfloat16 x bfloat16 with float32 sums: ``pre(A)`` is rounded to
    bfloat16 as it is read; bias, residual and output are float32 unless said below.
    ``pre(A) = silu(A * scale)`` per column when ``scale`` ((K,)) is given, else ``A``; ``post`` is ReLU
    when ``relu``. Writes into ``out`` (allocated if None; it must not overlap ``a``) and returns it.
    A bfloat16 ``a`` (matrices all bfloat16, e.g. a ``depthwise_st(..., out_dtype=torch.bfloat16)`` output) is
    read as it is, without rounding, by a bfloat16 ``weight`` (with ``scale``, ``pre`` of the widened values is
    rounded again). With a bfloat16 ``weight``, ``residual`` may be bfloat16 (widened exactly) and ``out_dtype``
    (the dtype ``out`` must have) bfloat16: the output rounded to nearest even.
    """
    parts = [a] if isinstance(a, torch.Tensor) else list(a)
    bf16_input = parts[0].dtype == torch.bfloat16
    if bf16_input:
        _check_bf16_input(parts, weight)
    grouped = len(parts) == 1 and parts[0].dim() == 3  # rows in groups
    rows = parts[0].shape[0] * (parts[0].shape[1] if grouped else 1)
    ptrs, strides, widths = [], [], []  # gathered in one pass: this runs for every 1x1x1 conv
    for i, part in enumerate(parts):
        if grouped:
            if not bf16_input:
                _check("a", part, contiguous=False)
            if part.stride(2) != 1:
                raise ValueError(f"a: expected contiguous rows (last stride 1), got strides {part.stride()}")
        elif bf16_input:
            if part.shape[0] != rows:
                raise ValueError(f"a[{i}]: expected {rows} rows like a[0], got {part.shape[0]}")
        elif part.dim() != 2:
            raise ValueError(f"a[{i}]: expected a matrix, got shape {tuple(part.shape)}")
        else:
            _rows(f"a[{i}]", part, (rows, part.shape[1]))
        ptrs.append(part.data_ptr())
        strides.append(part.stride(-2))
        widths.append(part.shape[-1])
    group, group_stride = (parts[0].shape[1], parts[0].stride(0)) if grouped else (0, 0)
    k = sum(widths)
    padded = -(-n // 8) * 8
    bf16 = _check_weight(lib, weight, k, padded)
    _check("bias", bias, (padded,))
    if scale is not None:
        _check("scale", scale, (k,))
    io_dtypes = _DTYPES if bf16 else _FLOAT32  # bfloat16 only with bf16 products
    res_bf16 = 0 if residual is None else _rows("residual", residual, (rows, n), io_dtypes)
    if out_dtype not in io_dtypes:
        raise ValueError(f"out_dtype: expected {' or '.join(map(str, io_dtypes))} (bfloat16 needs a bfloat16 weight), "
                         f"got {out_dtype}")
    if out is None:
        out = torch.empty(rows, n, dtype=out_dtype)
    if out.dtype != out_dtype:
        raise ValueError(f"out: expected {out_dtype} (out_dtype), got {out.dtype}")
    _rows("out", out, (rows, n), io_dtypes)
    nparts = len(parts)
    lib.vov3d_gemm(
        (ctypes.c_void_p * nparts)(*ptrs), (ctypes.c_long * nparts)(*strides), (ctypes.c_int * nparts)(*widths), nparts,
        group, group_stride, rows, weight.data_ptr(), 2 if bf16_input else bf16, padded, n,
        bias.data_ptr(), _ptr(scale), _ptr(residual), residual.stride(0) if residual is not None else 0, int(relu),
        out.data_ptr(), out.stride(0), res_bf16 | (2 if out_dtype == torch.bfloat16 else 0),
    )
    return out


def layer_weights(
    lib: ctypes.CDLL,
    a: tuple[torch.Tensor, torch.Tensor],
    depthwise: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    stride: int,
    se: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None,
    c: tuple[torch.Tensor, torch.Tensor],
    dims: tuple[int, int, int],
    has_residual: bool,
    silu_out: bool,
    coarse_silu: bool = False,
    dw_dtype: torch.dtype = torch.float32,
    in_dtype: torch.dtype = torch.float32,
    out_dtype: torch.dtype = torch.float32,
) -> LayerWeights:
    """A D(2+1)D layer for ``d2plus1d_layer``, checked once: ``a`` and ``c`` the first and last 1x1x1 convs from
    ``pack_weight``; ``depthwise`` the (kt, D) temporal taps, (9, D) spatial taps and (D,) bias; ``se`` SE's
    (C, C_se), (C_se,), (C_se, C), (C,) weights as ``se_gate`` takes them, or None; ``dims`` (C_in, D, C_out);
    ``silu_out``, ``coarse_silu`` and ``dw_dtype`` (the depthwise output's, the ``out_dtype`` of ``depthwise_st``)
    as in ``depthwise_st``. ``in_dtype`` and ``out_dtype``: of the layer's input (which is also its residual) and
    output; bfloat16 needs bfloat16 products (``pack_weight``)."""
    cin, d, cout = dims
    a_bf16 = _check_weight(lib, a[0], cin, -(-d // 8) * 8)
    c_bf16 = _check_weight(lib, c[0], d, -(-cout // 8) * 8)
    _check("a bias", a[1], (a[0].shape[1],))
    _check("c bias", c[1], (c[0].shape[1],))
    kt = _check_depthwise(*depthwise, d, stride)
    dw_bf16, in_bf16, out_bf16 = (_bf16_flag(lib, dt, name) for dt, name in
                                  ((dw_dtype, "dw_dtype"), (in_dtype, "in_dtype"), (out_dtype, "out_dtype")))
    cse = 0 if se is None else se[1].shape[0]
    if se is not None:
        for name, t, shape in zip(("se w1", "se b1", "se w2", "se b2"), se, ((d, cse), (cse,), (cse, d), (d,))):
            _check(name, t, shape)
    if dw_bf16 and (not c_bf16 or d % 2):
        raise ValueError("dw_dtype bfloat16 needs a bfloat16 last conv and an even D")
    if (in_bf16 or out_bf16) and not (a_bf16 and c_bf16):
        raise ValueError("in_dtype and out_dtype bfloat16 need bfloat16 convs (pack_weight)")
    if has_residual and (cin != cout or stride != 1):
        raise ValueError(f"a residual needs C_in == C_out and stride 1, got {cin}, {cout}, {stride}")
    ptr = lambda t: None if t is None else t.data_ptr()  # noqa: E731
    weights = LayerWeights(
        ptr(a[0]), ptr(a[1]), a[0].shape[1], a_bf16, *(ptr(t) for t in depthwise), kt, stride,
        *(ptr(t) for t in (se or (None,) * 4)), cse,
        ptr(c[0]), ptr(c[1]), c[0].shape[1], c_bf16, cin, d, cout, int(has_residual),
        _silu_mode(silu_out, coarse_silu), dw_bf16, in_bf16, out_bf16,
    )
    weights.tensors = (a, depthwise, se, c)  # the pointers' owners live as long as the structure
    return weights


def d2plus1d_layer(
    lib: ctypes.CDLL, weights: LayerWeights, x: torch.Tensor, grid: tuple[int, int, int], one_pass_bytes: int,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """A whole D(2+1)D layer of one clip in one call: ``x`` (T*H*W, C_in) rows of a (T, H, W) ``grid``; returns
    (T*Ho*Wo, C_out) rows; each of the dtype ``layer_weights`` was given. The same kernel calls as ``gemm``,
    ``depthwise_st`` (or ``d2plus1d``, when the first conv's output would exceed ``one_pass_bytes``, in
    ``band_rows`` tasks), ``se_gate`` and ``gemm`` made one by one, without the Python between them (about 30 µs
    per layer from Python, 4 µs in one call)."""
    t, h, w = grid
    if _check("x", x, (t * h * w, weights.cin), dtypes=_DTYPES) != weights.in_bf16:
        raise ValueError(f"x: expected {_DTYPES[weights.in_bf16]} (layer_weights' in_dtype), got {x.dtype}")
    ho, wo = (h - 1) // weights.stride + 1, (w - 1) // weights.stride + 1
    if out is None:
        out = torch.empty(t * ho * wo, weights.cout, dtype=_DTYPES[weights.out_bf16])
    if _check("out", out, (t * ho * wo, weights.cout), dtypes=_DTYPES) != weights.out_bf16:
        raise ValueError(f"out: expected {_DTYPES[weights.out_bf16]} (layer_weights' out_dtype), got {out.dtype}")
    lib.vov3d_d2plus1d_layer(ctypes.byref(weights), x.data_ptr(), t, h, w, one_pass_bytes, band_rows(ho),
                             out.data_ptr())
    return out
