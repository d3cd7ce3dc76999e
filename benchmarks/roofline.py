"""The machine's limits, measured in-process, and each model's roofline floor per clip.

    python benchmarks/roofline.py                          # machine limits + floors of all models, 16x224²
    python benchmarks/roofline.py --models vov3d_m --batch-sizes 1 8

Machine limits (median of a few runs, all threads):

* matmul rate: ``torch.mm`` of two 2048x2048 matrices, float32 and bfloat16 (GFLOP/s, 2 per multiply-add);
* DRAM bandwidth: ``copy_`` of a 256 MiB tensor, counting the bytes read and written (GB/s).

A model's floor is the time a perfect implementation would need on this machine. We count it per
layer (conv or linear of the BN-folded model), each at ``max(compute, memory)``:

* compute: the layer's multiply-adds x 2 / the matmul rate (depthwise convs are charged as if they
  ran at the matmul rate, which no implementation reaches: the floor is optimistic);
* memory: the *minimal* activation traffic, the layer's input read once and its output written once,
  with every BN, activation, SE scaling, residual add and concatenation fused into some layer (they add
  no traffic). The two depthwise convs of a D(2+1)D layer (``b1``, ``b2``) and the stem's
  ``conv_xy``/``conv`` count as one fused layer (the intermediate never leaves the cache); weights are
  counted too. A T-OSA's aggregation conv reads its whole concatenation once.

``floor = sum over layers of max(compute, memory)``; ``compute floor = total FLOPs / matmul rate``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

import vov3d
from vov3d.utils.cpu_features import has_bf16_arithmetic
from common import describe_runtime, model_benchmark_parser


@dataclass
class MachineLimits:
    fp32_gflops: float
    bf16_gflops: float
    dram_gbs: float

    def describe(self) -> str:
        return (
            f"matmul float32 {self.fp32_gflops:.0f} GFLOP/s, bfloat16 {self.bf16_gflops:.0f} GFLOP/s; "
            f"DRAM {self.dram_gbs:.1f} GB/s"
        )


def _median_time(fn, iters: int) -> float:
    fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, iters: int = 5) -> float:
    """GFLOP/s of an n x n x n ``torch.mm`` in ``dtype`` (2 FLOPs per multiply-add)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    t = _median_time(lambda: torch.mm(a, b, out=out), iters)
    return 2 * n**3 / t / 1e9


def dram_gbs(mib: int = 256, iters: int = 5) -> float:
    """GB/s of a large ``copy_`` (bytes read + bytes written), well beyond the last-level cache."""
    src = torch.ones(mib * 2**20 // 4)
    dst = torch.empty_like(src)
    t = _median_time(lambda: dst.copy_(src), iters)
    return 2 * src.numel() * 4 / t / 1e9


def measure_machine(iters: int = 5) -> MachineLimits:
    """The machine's limits. Without bfloat16 arithmetic (no AVX512_BF16 or AMX) torch's bfloat16 product runs
    at a small fraction of float32's: measured on a 512³ product once (a 2048³ one takes minutes there)."""
    bf16 = has_bf16_arithmetic()
    return MachineLimits(
        fp32_gflops=matmul_gflops(torch.float32, iters=iters),
        bf16_gflops=matmul_gflops(torch.bfloat16, n=2048 if bf16 else 512, iters=iters if bf16 else 1),
        dram_gbs=dram_gbs(iters=iters),
    )


@dataclass
class Layer:
    name: str
    flops: float  # 2 x multiply-adds
    bytes: float  # minimal activation (+ weight) traffic


def _conv_flops(module: nn.Module, out: torch.Tensor) -> float:
    if isinstance(module, nn.Linear):
        return 2.0 * out.numel() * module.in_features
    k = module.weight[0].numel()  # (C_in / groups) * kT * kH * kW
    return 2.0 * out.numel() * k


def model_layers(model: nn.Module, frames: int = 16, size: int = 224, batch: int = 1, itemsize: int = 4) -> list[Layer]:
    """Each conv/linear layer of ``model`` (BN-folded or not) with its FLOPs and minimal bytes, for one batch.

    Runs on the ``meta`` device: nothing is computed. The depthwise pairs named above are merged.
    """
    records: dict[str, list] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv3d, nn.Linear)):
            def hook(mod, inputs, out, name=name):
                records[name] = [_conv_flops(mod, out), inputs[0].numel(), out.numel(), mod.weight.numel()]
            handles.append(m.register_forward_hook(hook))
    x = torch.zeros(batch, 3, frames, size, size, device="meta")
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    # Merge the depthwise pairs: (b1 -> b2) and (conv_xy -> conv).
    merged: list[Layer] = []
    names = list(records)
    skip = set()
    for i, name in enumerate(names):
        if name in skip:
            continue
        flops, n_in, n_out, n_w = records[name]
        for first, second in ((".b1", ".b2"), (".conv_xy", ".conv")):
            if name.endswith(first):
                partner = name[: -len(first)] + second
                if partner in records:
                    f2, _, n_out2, w2 = records[partner]
                    flops, n_out, n_w = flops + f2, n_out2, n_w + w2
                    skip.add(partner)
        merged.append(Layer(name, flops, (n_in + n_out + n_w) * itemsize))
    return merged


@dataclass
class Floor:
    flops: float  # per clip
    bytes: float  # per clip
    compute_s: float  # per clip: FLOPs / matmul rate
    memory_s: float  # per clip: bytes / bandwidth
    roofline_s: float  # per clip: sum over layers of max(compute, memory)


def model_floor(model: nn.Module, limits: MachineLimits, frames=16, size=224, batch=1, dtype=torch.float32) -> Floor:
    """The per-clip floor of ``model`` on a machine with ``limits`` (see the module docstring)."""
    bf16 = dtype == torch.bfloat16
    rate = (limits.bf16_gflops if bf16 else limits.fp32_gflops) * 1e9
    bw = limits.dram_gbs * 1e9
    layers = model_layers(model, frames, size, batch, itemsize=2 if bf16 else 4)
    flops = sum(layer.flops for layer in layers) / batch
    nbytes = sum(layer.bytes for layer in layers) / batch
    roof = sum(max(layer.flops / rate, layer.bytes / bw) for layer in layers) / batch
    return Floor(flops, nbytes, flops / rate, nbytes / bw, roof)


def meta_model(name: str) -> nn.Module:
    with torch.device("meta"):
        return vov3d.create_model(name).eval()


def main() -> None:
    args = model_benchmark_parser(__doc__.splitlines()[0], vov3d.list_models(), [1, 8], iters=5).parse_args()

    print(f"# {describe_runtime()}")
    limits = measure_machine(args.iters)
    print(f"# {limits.describe()}")
    print(f"# input {args.frames}x{args.size}x{args.size}; per clip")
    print(
        f"{'model':<11} {'batch':>5} {'dtype':>8} {'GFLOP':>7} {'MB':>7} {'compute ms':>11} "
        f"{'memory ms':>10} {'roofline ms':>12}"
    )
    for name in args.models:
        model = meta_model(name)
        for batch in args.batch_sizes:
            for dtype in (torch.float32, torch.bfloat16):
                f = model_floor(model, limits, args.frames, args.size, batch, dtype)
                print(
                    f"{name:<11} {batch:>5} {str(dtype).split('.')[-1]:>8} {f.flops / 1e9:>7.2f} "
                    f"{f.bytes / 1e6:>7.0f} {f.compute_s * 1e3:>11.1f} {f.memory_s * 1e3:>10.1f} "
                    f"{f.roofline_s * 1e3:>12.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
