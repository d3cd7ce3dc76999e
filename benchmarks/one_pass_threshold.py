"""The one-pass threshold of the kernel network (``vov3d.accel.kernel_network.ONE_PASS_BYTES``), measured on whole models.

    python benchmarks/one_pass_threshold.py                              # VoV3D-M, v2, L; float32 and bf16
    python benchmarks/one_pass_threshold.py --models vov3d_m --mib 4 6 9.5 12 --reps 30

A D(2+1)D layer whose first 1x1x1 conv outputs more than the threshold runs that conv inside the
depthwise pass (``vov3d.ops.inference_kernels.d2plus1d``). Whether that pays depends on what stays in cache between
layers, so single layers (``benchmarks/kernels.py``) do not settle it: this script runs each prepared
model at 16x224², batch 1, with each threshold in turn, interleaved in one process (a slow moment hits
every threshold alike), and prints the fastest of ``--reps`` forwards per threshold and its speed-up over
the first one.
"""

from __future__ import annotations

import argparse
import time

import torch

import vov3d
from common import describe_runtime
from vov3d.accel.allocator import keep_freed_memory
from vov3d.accel import kernel_network
from vov3d.utils.cpu_features import has_bf16_arithmetic as cpu_has_bf16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vov3d_m", "vov3d_m_v2", "vov3d_l"])
    parser.add_argument("--mib", nargs="+", type=float, default=[12, 6],
                        help="thresholds in MiB; the first is the reference")
    parser.add_argument("--reps", type=int, default=20, help="forwards per threshold (the fastest counts)")
    args = parser.parse_args()
    dtypes = [torch.float32] + ([torch.bfloat16] if cpu_has_bf16() else [])
    keep_freed_memory()  # as prepare_for_inference does
    print(f"# {describe_runtime()}")
    x = torch.randn(1, 3, 16, 224, 224, generator=torch.Generator().manual_seed(1))
    for name in args.models:
        torch.manual_seed(0)
        model = vov3d.create_model(name).eval()
        for dtype in dtypes:
            prepared = vov3d.prepare_for_inference(model, backend="kernels", dtype=dtype)
            best = {mib: float("inf") for mib in args.mib}
            with torch.inference_mode():
                prepared(x)
                for _ in range(args.reps):
                    for mib in args.mib:
                        kernel_network.ONE_PASS_BYTES = int(mib * 2**20)
                        t0 = time.perf_counter()
                        prepared(x)
                        best[mib] = min(best[mib], time.perf_counter() - t0)
            ref = best[args.mib[0]]
            cells = "   ".join(f"{mib:g} MiB {t * 1e3:6.1f} ms ({ref / t:.3f}x)" for mib, t in best.items())
            print(f"{name:<11} {str(dtype).removeprefix('torch.'):<8} {cells}", flush=True)


if __name__ == "__main__":
    main()
