"""A training step (forward, backward, SGD), per clip, side by side: plain eager vs the prepared model; and its floor.

    python benchmarks/train_step.py                         # vov3d_m, batch 8, 16x160²
    python benchmarks/train_step.py --models vov3d_m x3d_m --batch-size 4 --compile

Ways to run the step on the same weights and data:

* ``plain``: the model as built, eager, NCDHW;
* ``plain_cl3d``: the model and input in ``channels_last_3d`` memory format (off the shelf);
* ``channels_last``: ``vov3d.prepare_for_training(model, backend="channels_last")``, the channels-last network
  (the same parameters, BNs in training mode on channels-last views; see ``docs/performance.md``), eager;
* ``kernels``: ``vov3d.prepare_for_training(model, backend="kernels")`` (the default on a CPU): the same with
  vov3d's training kernels (``vov3d.ops.training_kernels``: batch norms with what follows them, the depthwise
  convs, squeeze-excitation, the 1x1x1 convs);
* ``channels_last_compiled`` (with ``--compile``): ``channels_last`` under ``torch.compile`` (forward and
  backward; compiled in the run, its compile time printed).

(Before issue 15 these were ``channels_last``, ``fast``, ``fast_kernels`` and ``fast_compiled``.)

``--profile`` adds a per-op profile (``torch.profiler``) of one step of the last way: where training time goes.
``--breakdown`` times, by wall clock, the forward and backward of each of ``vov3d.ops.training_kernels``'
autograd functions over two ``kernels`` steps (the profiler's attribution of custom functions was
unreliable here), and the 1x1x1 convs' matrix products (forward and both gradients) against their own floor
(3 x their forward FLOPs at the matmul rate).

The floor is 3 x the forward FLOPs (forward, and backward for inputs and weights) over the measured
float32 matmul rate. Before timing, one step of each is checked against ``plain``: the largest
norm of the gradient difference over the norm of the gradient (all parameters together). The allocator is set up as in
``benchmarks/inference.py`` unless ``--malloc-defaults``.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch
import torch.nn.functional as F

import vov3d
from common import describe_runtime, time_call
from roofline import matmul_gflops, model_floor, model_layers, MachineLimits, dram_gbs
from vov3d.accel.allocator import keep_freed_memory


def make_step(module: torch.nn.Module, params, x: torch.Tensor, y: torch.Tensor, lr: float = 0.01):
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-5)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(module(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def first_grads(module: torch.nn.Module, params, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    for p in params:
        p.grad = None
    torch.manual_seed(2)  # the same dropout mask
    F.cross_entropy(module(x), y).backward()
    return [p.grad.clone() for p in params]


def product_flops(meta: torch.nn.Module, frames: int, size: int) -> float:
    """Forward FLOPs per clip of the 1x1x1 convs that run as matrix products (not squeeze-excitation's)."""
    names = {
        name for name, m in meta.named_modules()
        if isinstance(m, torch.nn.Conv3d) and m.kernel_size == (1, 1, 1) and m.groups == 1 and ".se." not in name
    }
    return sum(layer.flops for layer in model_layers(meta, frames, size) if layer.name in names)


def print_breakdown(step, batch: int, products_floor: float, steps: int = 2) -> None:
    """Wall time per step in each training-kernel function's forward and backward (wrapped for the call);
    ``products_floor``: the matrix products' floor per step, in seconds."""
    from vov3d.ops import training_kernels

    spent: dict[str, float] = {}
    functions = [v for v in vars(training_kernels).values() if isinstance(v, type) and issubclass(v, torch.autograd.Function)]
    originals = {(f, m): getattr(f, m) for f in functions for m in ("forward", "backward")}

    def timed(fn, key):
        def run(*args):
            t0 = time.perf_counter()
            out = fn(*args)
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0
            return out

        return staticmethod(run)

    step()
    for (f, m), fn in originals.items():
        setattr(f, m, timed(fn, f"{f.__name__.lstrip('_')}.{m}"))
    try:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        total = (time.perf_counter() - t0) / steps
    finally:
        for (f, m), fn in originals.items():
            setattr(f, m, staticmethod(fn))
    print(f"# kernels, one step of batch {batch}: {total * 1e3:.0f} ms; wall time in each function")
    for key, t in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"#   {key:<30} {t / steps * 1e3:7.1f} ms  {t / steps / total:5.1%}")
    inside = sum(spent.values()) / steps
    print(f"#   {'(outside these functions)':<30} {(total - inside) * 1e3:7.1f} ms  {(total - inside) / total:5.1%}")
    products = sum(t for key, t in spent.items() if key.startswith("PointwiseConv.")) / steps
    print(f"# matrix products {products * 1e3:.0f} ms per step, {products / products_floor:.2f}x their floor "
          f"({products_floor * 1e3:.0f} ms: 3 x their forward FLOPs at the matmul rate)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vov3d_m"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="add the channels_last_compiled way")
    parser.add_argument("--malloc-defaults", action="store_true")
    parser.add_argument("--profile", action="store_true", help="print a per-op profile of one step of the last way")
    parser.add_argument("--breakdown", action="store_true", help="time each training-kernel function (kernels)")
    parser.add_argument("--ways", nargs="+", default=["plain", "plain_cl3d", "channels_last", "kernels"],
                        help="which ways to run (plain is the reference, always run first)")
    args = parser.parse_args()
    if not args.malloc_defaults:
        keep_freed_memory()

    print(f"# {describe_runtime()}")
    print(f"# load average at start: {os.getloadavg()[0]:.2f}")
    limits = MachineLimits(matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16), dram_gbs())
    print(f"# machine at start: {limits.describe()}")
    b = args.batch_size
    print(f"# training step (forward, backward, SGD momentum), batch {b}, {args.frames}x{args.size}², float32")
    print(f"{'model':<11} {'way':<14} {'ms/clip':>9} {'vs plain':>9} {'grad diff':>14} {'first s':>8}")
    rows = []
    for name in args.models:
        torch.manual_seed(0)
        base = vov3d.create_model(name, num_classes=174, dropout=0.0)  # inductor draws other dropout masks
        with torch.device("meta"):
            meta = vov3d.create_model(name, num_classes=174, dropout=0.0)
        fwd_flops = model_floor(meta, limits, args.frames, args.size, 1).flops
        x = torch.randn(b, 3, args.frames, args.size, args.size)
        y = torch.randint(0, 174, (b,))

        ways = {}
        plain = copy.deepcopy(base).train()
        ways["plain"] = (plain, list(plain.parameters()), x)
        keep = not args.malloc_defaults
        if "plain_cl3d" in args.ways:
            cl = copy.deepcopy(base).train().to(memory_format=torch.channels_last_3d)
            ways["plain_cl3d"] = (cl, list(cl.parameters()), x.contiguous(memory_format=torch.channels_last_3d))
        if "channels_last" in args.ways:
            fm = copy.deepcopy(base).train()
            prepared = vov3d.prepare_for_training(fm, backend="channels_last", keep_memory=keep)
            ways["channels_last"] = (prepared.train(), list(fm.parameters()), x)
        if "kernels" in args.ways:
            fk = copy.deepcopy(base).train()
            prepared = vov3d.prepare_for_training(fk, backend="kernels", keep_memory=keep)
            ways["kernels"] = (prepared, list(fk.parameters()), x)
        if args.compile:
            fc = copy.deepcopy(base).train()
            prepared = vov3d.prepare_for_training(fc, backend="channels_last", keep_memory=keep)
            ways["channels_last_compiled"] = (torch.compile(prepared.train()), list(fc.parameters()), x)

        g_ref = None
        t_plain = None
        for way, (module, params, xin) in ways.items():
            t0 = time.perf_counter()
            grads = first_grads(module, params, xin, y)
            first = time.perf_counter() - t0
            if g_ref is None:
                g_ref = grads
            rel = (
                torch.cat([(g - r).flatten() for g, r in zip(grads, g_ref)]).norm()
                / torch.cat([r.flatten() for r in g_ref]).norm()
            ).item()
            t = time_call(make_step(module, params, xin, y), warmup=1, iters=args.iters) / b
            t_plain = t_plain or t
            rows.append((name, way, t, t_plain / t, fwd_flops))
            print(f"{name:<11} {way:<14} {t * 1e3:>9.1f} {t_plain / t:>8.2f}x {rel:>14.1e} {first:>8.1f}", flush=True)
        if args.breakdown and "kernels" in ways:
            module, params, xin = ways["kernels"]
            rate = max(limits.fp32_gflops, matmul_gflops(torch.float32))  # as for the floor below
            floor = 3 * product_flops(meta, args.frames, args.size) * b / (rate * 1e9)
            print_breakdown(make_step(module, params, xin, y), b, floor)
        if args.profile:
            way = list(ways)[-1]
            module, params, xin = ways[way]
            step = make_step(module, params, xin, y)
            with torch.profiler.profile() as prof:
                step()
            print(f"# {name}, {way}, one step of batch {b}: self CPU time per op")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    rate = max(limits.fp32_gflops, matmul_gflops(torch.float32))  # a busy moment only lowers it
    print(f"# load average at end: {os.getloadavg()[0]:.2f}; float32 matmul rate (best of start/end) {rate:.0f} GFLOP/s")
    for name, way, t, speedup, fwd_flops in rows:
        floor = 3 * fwd_flops / (rate * 1e9)
        print(f"{name:<11} {way:<14} {t * 1e3:>9.1f} ms/clip, {speedup:.2f}x plain, {t / floor:.2f}x the floor ({floor * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
