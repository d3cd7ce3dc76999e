"""vov3d's fused CPU kernels against what torch would run instead, on VoV3D's layer shapes (one clip, 16x224²).

    python benchmarks/kernels.py              # VoV3D-M's shapes
    python benchmarks/kernels.py --iters 20
    python benchmarks/kernels.py --training-only

Three comparisons, each printed as ms per call and a ratio (torch / ours; > 1: ours is faster):

* ``depthwise_st`` (ReLU on load, 1x3x3 + 3x1x1 + bias, Swish on store) against the same maths with torch
  ops on channels-last tensors: ReLU, oneDNN's 2D depthwise conv over frames, the shift-add of
  ``vov3d.accel.channels_last.temporal_depthwise``, Swish;
* ``gemm`` (1x1x1 conv with bias, residual add and ReLU fused) against ``torch.addmm`` (MKL) with the
  same epilogue as two in-place ops, and the plain products' rates in GFLOP/s (with the bfloat16
  products too, and their speed-up over our float32 ones, where the CPU has AVX512_BF16; and with a
  bfloat16 input read in place, against a float32 input rounded as it is read);
* ``d2plus1d`` (the 1x1x1 conv inside the depthwise pass) against ``gemm`` then ``depthwise_st``;

and two of the training kernels (``vov3d.ops.training_kernels``) on VoV3D-M's shapes at batch 8, 16x160²:

* the weight gradient of a 1x1x1 conv, ``x^T dy`` (``vov3d_gemm_tn``), against ``x.t() @ dy`` (MKL);
* the depthwise 1x3x3 backward (``vov3d_bn_relu_dw3x3_bwd``: input and weight gradients, with the batch
  norm + ReLU before it formed again, its mask applied and the batch norm's sums) against oneDNN's
  channels-last ``conv2d`` backward alone, over the 128 frames.
"""

from __future__ import annotations

import tempfile

import torch
import torch.nn.functional as F

from common import describe_runtime, time_call
from vov3d.accel.allocator import keep_freed_memory
from vov3d.accel.channels_last import spatial_conv, temporal_depthwise
from vov3d.ops import inference_kernels
from vov3d.ops.library import has_bf16, load_library

# (T, H, C_in, D, stride) of VoV3D-M's D(2+1)D layers at 16x224² (C_in: the layer's input channels: the
# previous stage's output for a stage's first layer, D // 2 for the others).
LAYERS = [(16, 112, 24, 48, 2), (16, 56, 24, 48, 1), (16, 56, 24, 96, 2), (16, 28, 48, 96, 1),
          (16, 28, 48, 192, 2), (16, 14, 96, 192, 1), (16, 14, 96, 384, 2), (16, 7, 192, 384, 1)]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=10, help="timed calls per measurement (median)")
    parser.add_argument("--training-only", action="store_true", help="only the training kernels' comparisons")
    args = parser.parse_args()
    keep_freed_memory()
    lib = load_library(tempfile.mkdtemp(prefix="vov3d_kernels_"))
    if lib is None:
        raise SystemExit("the kernels could not be built (no C compiler?)")
    print(f"# {describe_runtime()}")

    def ms(fn) -> float:
        return time_call(fn, warmup=2, iters=args.iters) * 1e3

    g = torch.Generator().manual_seed(0)
    if not args.training_only:
        print("\n# depthwise_st vs ReLU + oneDNN 2D depthwise + shift-add + Swish (input H, D, stride)")
        for t, h, _, d, stride in LAYERS:
            x = torch.randn(1, t, h, h, d, generator=g)
            temporal, spatial, bias = (torch.randn(shape, generator=g) for shape in ((3, d), (9, d), (d,)))
            conv_s = torch.nn.Conv3d(d, d, (1, 3, 3), (1, stride, stride), (0, 1, 1), groups=d, bias=False)
            conv_t = torch.nn.Conv3d(d, d, (3, 1, 1), padding=(1, 0, 0), groups=d)
            conv_s = conv_s.to(memory_format=torch.channels_last_3d)
            with torch.no_grad():
                ours = ms(lambda: inference_kernels.depthwise_st(lib, x, temporal, spatial, bias, stride, True, True))
                theirs = ms(lambda: F.silu(temporal_depthwise(spatial_conv(F.relu(x), conv_s), conv_t)))
            print(f"{h:>4} {d:>4} {stride}   ours {ours:7.2f} ms   torch {theirs:7.2f} ms   {theirs / ours:5.2f}x")

        print("\n# gemm (bias + residual + ReLU fused) vs torch.addmm + add_ + relu_ (rows, K, N); the product alone,"
              " also with bfloat16 products where the CPU has AVX512_BF16")
        for t, h, cin, d, stride in LAYERS:
            ho = (h - 1) // stride + 1
            for rows, k, n in ((t * h * h, cin, d), (t * ho * ho, d, d // 2)):  # the layer's first and last 1x1x1
                a, w, b = torch.randn(rows, k, generator=g), torch.randn(k, n, generator=g), torch.randn(n, generator=g)
                res = torch.randn(rows, n, generator=g)
                packed, packed_bias = inference_kernels.pack_weight(w, b)
                out = torch.empty(rows, n)
                ours = ms(lambda: inference_kernels.gemm(lib, a, packed, packed_bias, n, residual=res, relu=True, out=out))
                theirs = ms(lambda: torch.addmm(b, a, w, out=out).add_(res).relu_())
                plain_ours = ms(lambda: inference_kernels.gemm(lib, a, packed, packed_bias, n, out=out))
                plain_mkl = ms(lambda: torch.addmm(b, a, w, out=out))
                gflop = 2 * rows * k * n / 1e9
                bf16 = ""
                if has_bf16(lib):
                    packed16, _ = inference_kernels.pack_weight(w, b, torch.bfloat16)
                    ours16 = ms(lambda: inference_kernels.gemm(lib, a, packed16, packed_bias, n, out=out))
                    bf16 = f", ours bf16 {gflop / ours16 * 1e3:4.0f} ({plain_ours / ours16:.2f}x)"
                    if k % 2 == 0:  # a bfloat16 input, as a layer without SE stores its depthwise output: read in place
                        a16 = a.to(torch.bfloat16)
                        in16 = ms(lambda: inference_kernels.gemm(lib, a16, packed16, packed_bias, n, out=out))
                        bf16 += f", bf16 input {gflop / in16 * 1e3:4.0f} ({ours16 / in16:.2f}x)"
                print(
                    f"{rows:>7} {k:>4} {n:>4}   ours {ours:6.2f} ms   torch {theirs:6.2f} ms   {theirs / ours:5.2f}x   "
                    f"product alone: ours {gflop / plain_ours * 1e3:4.0f}, MKL {gflop / plain_mkl * 1e3:4.0f}{bf16} GFLOP/s"
                )

        print("\n# d2plus1d (1x1x1 inside the depthwise pass) vs gemm then depthwise_st (input H, C_in, D, stride)")
        for t, h, cin, d, stride in LAYERS:
            x = torch.randn(1, t, h, h, cin, generator=g)
            weight = torch.randn(cin, d, generator=g) * 0.2
            packed, packed_bias = inference_kernels.pack_weight(weight, torch.randn(d, generator=g))
            temporal, spatial, bias = (torch.randn(shape, generator=g) for shape in ((3, d), (9, d), (d,)))

            def two_passes():
                y = inference_kernels.gemm(lib, x.view(-1, cin), packed, packed_bias, d).view(1, t, h, h, d)
                return inference_kernels.depthwise_st(lib, y, temporal, spatial, bias, stride, True, False, True)

            ours = ms(
                lambda: inference_kernels.d2plus1d(lib, x, packed, packed_bias, d, temporal, spatial, bias, stride, False, True)
            )
            theirs = ms(two_passes)
            mb = t * h * h * d * 4 / 2**20
            print(f"{h:>4} {cin:>4} {d:>4} {stride}   1x1x1 output {mb:5.1f} MB   one pass {ours:6.2f} ms   "
                  f"two passes {theirs:6.2f} ms   {theirs / ours:5.2f}x")

    print("\n# training, batch 8, 16x160²: weight gradient x^T dy, ours vs MKL (rows, K, N)")
    for rows, k, n in TRAIN_PRODUCTS:
        x, dy, dw = torch.randn(rows, k, generator=g), torch.randn(rows, n, generator=g), torch.empty(k, n)
        ours = ms(lambda: lib.vov3d_gemm_tn(x.data_ptr(), dy.data_ptr(), rows, k, n, dw.data_ptr()))
        theirs = ms(lambda: x.t() @ dy)
        gflop = 2 * rows * k * n / 1e9
        print(f"{rows:>7} {k:>4} {n:>4}   ours {gflop / ours * 1e3:4.0f}, MKL {gflop / theirs * 1e3:4.0f} GFLOP/s   "
              f"{theirs / ours:5.2f}x")

    print("\n# training, batch 8, 16x160²: depthwise 1x3x3 backward (input and weight gradients; ours also forms the"
          " batch norm + ReLU before it again, masks, and sums for the batch norm), ours vs oneDNN (frames, H, C, stride)")
    for h, c, stride in TRAIN_DEPTHWISE:
        x = torch.randn(128, h, h, c, generator=g)
        ho = (h - 1) // stride + 1
        dy, taps = torch.randn(128, ho, ho, c, generator=g), torch.randn(9, c, generator=g)
        scale, shift, mean = torch.rand(c, generator=g) + 0.5, torch.randn(c, generator=g), torch.zeros(c)
        dx, dtaps = torch.empty_like(x), torch.empty(9, c, dtype=torch.float64)
        sg, sgx = torch.empty(c, dtype=torch.float64), torch.empty(c, dtype=torch.float64)
        ours = ms(lambda: lib.vov3d_bn_relu_dw3x3_bwd(
            x.data_ptr(), scale.data_ptr(), shift.data_ptr(), mean.data_ptr(), dy.data_ptr(), taps.data_ptr(), 128,
            h, h, c, stride, dx.data_ptr(), dtaps.data_ptr(), sg.data_ptr(), sgx.data_ptr(),
        ))
        xc = x.permute(0, 3, 1, 2).requires_grad_()  # channels-last (N, C, H, W) views
        weight = taps.t().reshape(c, 1, 3, 3).contiguous().requires_grad_()
        y = F.conv2d(xc, weight, None, stride, 1, 1, c)
        dyc = dy.permute(0, 3, 1, 2)
        theirs = ms(lambda: torch.autograd.grad(y, (xc, weight), dyc, retain_graph=True))
        print(f"{128:>4} {h:>4} {c:>4} {stride}   ours {ours:6.2f} ms   oneDNN {theirs:6.2f} ms   {theirs / ours:5.2f}x")


# VoV3D-M at batch 8, 16x160²: (rows, K, N) of the weight-gradient products (each stage's first and last
# 1x1x1 of a layer; stage 2's first layer reads the 80x80 stem output), and (H, C, stride) of the
# depthwise 1x3x3 convs.
TRAIN_PRODUCTS = (
    (819200, 24, 48), (204800, 48, 24), (204800, 24, 48), (51200, 96, 48), (51200, 48, 96),
    (12800, 192, 96), (12800, 96, 192), (3200, 384, 192), (3200, 192, 384),
)
TRAIN_DEPTHWISE = ((80, 48, 2), (40, 48, 1), (40, 96, 2), (20, 96, 1), (20, 192, 2), (10, 192, 1), (10, 384, 2),
                   (5, 384, 1))


if __name__ == "__main__":
    main()
