"""Inference speed of the five models, plain eager vs ``vov3d.prepare_for_inference``, side by side.

    python benchmarks/models.py                      # 16x224², batch 1 and 8, all models
    python benchmarks/models.py --models vov3d_m --batch-sizes 1 --iters 5

Prints clips/s for each model and batch size and the prepared/plain ratio, plus the runtime
(torch, threads, allocator) it measured with. A script, not a test: speed is not asserted anywhere.
"""

from __future__ import annotations


import torch

import vov3d
from common import describe_runtime, model_benchmark_parser, time_call


def main() -> None:
    args = model_benchmark_parser(__doc__.splitlines()[0], vov3d.list_models(), [1, 8]).parse_args()

    print(f"# {describe_runtime()}")
    print(f"# input {args.frames}x{args.size}x{args.size}, float32, eval mode, median of {args.iters} runs")
    print(f"{'model':<11} {'batch':>5} {'plain clips/s':>14} {'prepared clips/s':>17} {'speed-up':>9} {'max |diff|':>11}")
    for name in args.models:
        model = vov3d.create_model(name).eval()
        prepared = vov3d.prepare_for_inference(model)
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, args.frames, args.size, args.size)
            with torch.inference_mode():
                diff = (model(x) - prepared(x)).abs().max().item()
                t_plain = time_call(lambda: model(x), iters=args.iters)
                t_prep = time_call(lambda: prepared(x), iters=args.iters)
            print(
                f"{name:<11} {batch:>5} {batch / t_plain:>14.2f} {batch / t_prep:>17.2f} "
                f"{t_plain / t_prep:>8.2f}x {diff:>11.1e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
