"""Inference per clip, side by side in one run: plain eager, off-the-shelf levers, prepared; against the floor.

    python benchmarks/inference.py                                   # all models, batch 1 and 8, 16x224²
    python benchmarks/inference.py --models vov3d_m x3d_m --batch-sizes 1
    python benchmarks/inference.py --levers plain channels_last compiled --inductor-baseline

Levers (``--levers``; each a way to run the same weights):

* ``plain``: the model as built, eager, NCDHW (the original implementation's speed), in this process, so with
  this process's allocator;
* ``plain_defaults``: ``plain`` timed in a child process with glibc malloc at its defaults, as a user of the
  original runs it (issue 4's baselines: at batch 8 the defaults map fresh pages for every large activation);
* ``eager``: off the shelf: BNs folded, weights and input in ``channels_last_3d``
  (``prepare_for_inference(model, backend="eager")``);
* ``inductor`` (with ``--inductor-baseline``): off the shelf: ``torch.compile`` of ``eager`` with
  inductor ``freezing`` (compiled in the run; its compile time is printed);
* ``channels_last``: ``prepare_for_inference(model, backend="channels_last")``: folded, (N, T, H, W, C) layout,
  1x1x1 convs as matrix products, 1x3x3 as 2D convs over frames, temporal convs as shift-adds, eager;
* ``compiled``: ``prepare_for_inference(model, backend="compiled")``: ``channels_last`` compiled by AOTInductor
  with freezing (package cached on disk: compiled once per shape and weights, ever);
* ``kernels``: ``prepare_for_inference(model, backend="kernels")``, what the default picks on a CPU: folded,
  vov3d's CPU kernels (``vov3d.accel.kernel_network``), eager, no compilation of the model;
* ``compiled_bf16``: ``compiled`` in bfloat16 (``dtype=torch.bfloat16``), where the CPU has bfloat16;
* ``kernels_bf16``: ``prepare_for_inference(model, backend="kernels", dtype=torch.bfloat16)``: ``kernels`` with the 1x1x1
  convs as bfloat16 products (float32 sums; VoV3D's activations stored as bfloat16), where the kernels have
  AVX512_BF16.

For each model and batch size it prints ms per clip (the median call), the speed-ups over ``plain`` and
``plain_defaults``, the
ratio to the roofline floor (``benchmarks/roofline.py``; machine limits measured at the start and at the
end of this run, the best of the two: a busy moment only lowers them; bf16 against the bfloat16 floor),
the same ratio for the fastest call (``min``: on a shared machine, other work only ever slows a call
down, so the fastest is the closest to what the code does alone) and the largest output difference from
``plain`` (bf16 levers: also the ratios to the float32 compute floor, issue 4's bfloat16 target); then
the paper's comparisons (VoV3D-M vs X3D-M, VoV3D-L vs X3D-L) at each lever and between each model's
fastest float32 preparation. Models are built with
``torch.manual_seed(0)`` so that compiled packages are reused between runs. The allocator is set up as ``vov3d.prepare_for_inference`` does
(``vov3d.accel.allocator.keep_freed_memory``) unless ``--malloc-defaults``; the header says which ran.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

import vov3d
from common import describe_runtime, model_benchmark_parser, time_calls
from roofline import MachineLimits, measure_machine, meta_model, model_floor
from vov3d.accel.allocator import keep_freed_memory
from vov3d.utils.cpu_features import has_bf16_arithmetic as cpu_has_bf16

LEVERS = ("plain_defaults", "plain", "eager", "inductor", "channels_last", "compiled", "kernels", "compiled_bf16",
          "kernels_bf16")
BF16_LEVERS = ("compiled_bf16", "kernels_bf16")
PREPARED = ("eager", "channels_last", "compiled", "kernels")  # float32 preparations of vov3d


def plain_model(name: str) -> torch.nn.Module:
    """The model every lever runs, built with ``torch.manual_seed(0)`` (so compiled packages are reused)."""
    torch.manual_seed(0)
    return vov3d.create_model(name).eval()


def clip_input(args: argparse.Namespace, batch: int) -> torch.Tensor:
    """The input every lever of a cell gets, in this process and in the plain_defaults child."""
    torch.manual_seed(1)
    return torch.randn(batch, 3, args.frames, args.size, args.size)


def plain_with_malloc_defaults(name: str, args: argparse.Namespace) -> dict[int, list[float]]:
    """The ``plain`` lever's call times for each batch size, timed by this script in a child process that leaves
    glibc malloc at its defaults (``keep_freed_memory`` is process-wide and cannot be undone)."""
    command = [
        sys.executable, __file__, "--child-plain", "--malloc-defaults", "--models", name,
        "--batch-sizes", *map(str, args.batch_sizes), "--frames", str(args.frames), "--size", str(args.size),
        "--iters", str(args.iters), "--min-seconds", str(args.min_seconds),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the plain_defaults child failed:\n{result.stderr.strip()}")
    return {cell["batch"]: cell["times"] for cell in map(json.loads, result.stdout.splitlines())}


def time_plain_cells(args: argparse.Namespace) -> None:
    """``--child-plain``: one JSON line per batch size with the plain model's call times, nothing else."""
    for name in args.models:
        model = plain_model(name)
        for batch in args.batch_sizes:
            x = clip_input(args, batch)
            with torch.inference_mode():
                times = time_calls(lambda: model(x), warmup=1, iters=args.iters, min_seconds=args.min_seconds)
            print(json.dumps({"model": name, "batch": batch, "times": times}), flush=True)


def build_runners(name: str, levers: list[str], cache_dir: str | None) -> tuple[torch.nn.Module, dict]:
    model = plain_model(name)
    runners: dict[str, object] = {}
    for lever in levers:
        if lever == "plain_defaults":
            continue  # timed in a child process (plain_with_malloc_defaults)
        if lever == "plain":
            runners[lever] = model
        elif lever == "inductor":
            base = vov3d.prepare_for_inference(model, backend="eager")
            runners[lever] = torch.compile(base, dynamic=False, options={"freezing": True})
        else:
            dtype = torch.bfloat16 if lever in BF16_LEVERS else torch.float32
            backend = lever.removesuffix("_bf16")
            runners[lever] = vov3d.prepare_for_inference(model, backend=backend, cache_dir=cache_dir, dtype=dtype)
    return model, runners


def main() -> None:
    parser = model_benchmark_parser(
        __doc__.splitlines()[0], ["vov3d_m_v2", "vov3d_m", "x3d_m", "vov3d_l", "x3d_l"], [1, 8]
    )
    parser.add_argument(
        "--levers", nargs="+", choices=LEVERS,
        default=["plain_defaults", "plain", "eager", "channels_last", "compiled", "kernels", "compiled_bf16",
                 "kernels_bf16"],
    )
    parser.add_argument("--inductor-baseline", action="store_true", help="add the 'inductor' lever")
    parser.add_argument("--min-seconds", type=float, default=0.0, help="time each measurement at least this long")
    parser.add_argument("--cache-dir", default=None, help="compiled-package cache (default: vov3d's)")
    parser.add_argument("--malloc-defaults", action="store_true", help="leave glibc malloc at its defaults")
    parser.add_argument("--child-plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_plain:
        time_plain_cells(args)
        return

    levers = list(args.levers)
    if args.inductor_baseline and "inductor" not in levers:
        levers.insert(levers.index("channels_last") if "channels_last" in levers else len(levers), "inductor")
    for lever in BF16_LEVERS:
        if lever in levers and not cpu_has_bf16():
            print(f"# no bfloat16 instructions on this CPU: skipping the {lever} lever")
            levers.remove(lever)
    if not args.malloc_defaults:
        keep_freed_memory()

    print(f"# {describe_runtime()}")
    if "plain_defaults" in levers:
        print("# plain_defaults: timed in a child process, allocator: glibc malloc at its defaults")
    print(f"# load average at start: {os.getloadavg()[0]:.2f}")
    limits_start = measure_machine()
    print(f"# machine at start: {limits_start.describe()}")
    print(f"# input {args.frames}x{args.size}x{args.size}, eval mode, median of {args.iters} runs; ms per clip")
    print(f"{'model':<11} {'batch':>5} {'lever':<14} {'ms/clip':>9} {'min':>7} {'max|diff|':>10} {'first call s':>12}")
    results: dict[tuple[str, int, str], float] = {}
    fastest: dict[tuple[str, int, str], float] = {}  # the fastest call: what the machine's noise (one-sided) left
    diffs: dict[tuple[str, int, str], float | None] = {}  # None: not compared (plain_defaults runs plain)
    for name in args.models:
        if "plain_defaults" in levers:
            for batch, times in plain_with_malloc_defaults(name, args).items():
                t = statistics.median(times)
                results[(name, batch, "plain_defaults")] = t / batch
                fastest[(name, batch, "plain_defaults")] = min(times) / batch
                diffs[(name, batch, "plain_defaults")] = None
                print(f"{name:<11} {batch:>5} {'plain_defaults':<14} {t / batch * 1e3:>9.1f} "
                      f"{min(times) / batch * 1e3:>7.1f} {'-':>10} {'-':>12}", flush=True)
        model, runners = build_runners(name, levers, args.cache_dir)
        for batch in args.batch_sizes:
            x = clip_input(args, batch)
            with torch.inference_mode():
                reference = model(x)
            for lever, runner in runners.items():
                with torch.inference_mode() if lever != "inductor" else torch.no_grad():
                    t0 = time.perf_counter()
                    out = runner(x)
                    first = time.perf_counter() - t0
                    diff = (out.float() - reference).abs().max().item()
                    times = time_calls(lambda: runner(x), warmup=1, iters=args.iters, min_seconds=args.min_seconds)
                t = statistics.median(times)
                results[(name, batch, lever)] = t / batch
                fastest[(name, batch, lever)] = min(times) / batch
                diffs[(name, batch, lever)] = diff
                print(
                    f"{name:<11} {batch:>5} {lever:<14} {t / batch * 1e3:>9.1f} {min(times) / batch * 1e3:>7.1f} "
                    f"{diff:>10.1e} {first:>12.1f}",
                    flush=True,
                )
    limits_end = measure_machine()
    print(f"# machine at end: {limits_end.describe()}")
    # A busy moment can only make a measured limit lower: the floor uses the best of the two.
    limits = MachineLimits(
        max(limits_start.fp32_gflops, limits_end.fp32_gflops),
        max(limits_start.bf16_gflops, limits_end.bf16_gflops),
        max(limits_start.dram_gbs, limits_end.dram_gbs),
    )
    print(f"# load average at end: {os.getloadavg()[0]:.2f}")
    print(f"# floors from the best of start and end: {limits.describe()}")
    print(f"{'model':<11} {'batch':>5} {'lever':<14} {'ms/clip':>9} {'vs plain':>9} {'vs glibc':>9} {'vs floor':>9} "
          f"{'min':>6} {'max|diff|':>10}")
    for name in args.models:
        for batch in args.batch_sizes:
            floor = model_floor(meta_model(name), limits, args.frames, args.size, batch)
            floor16 = model_floor(meta_model(name), limits, args.frames, args.size, batch, torch.bfloat16)
            print(
                f"{name:<11} {batch:>5} {'floor':<14} {floor.roofline_s * 1e3:>9.1f}   "
                f"(float32: compute {floor.compute_s * 1e3:.1f} ms, memory {floor.memory_s * 1e3:.1f} ms; "
                f"bfloat16 roofline {floor16.roofline_s * 1e3:.1f} ms)"
            )
            plain = results.get((name, batch, "plain"))
            plain_defaults = results.get((name, batch, "plain_defaults"))
            for lever in levers:
                per_clip, best = results[(name, batch, lever)], fastest[(name, batch, lever)]
                ref_floor = floor16 if lever in BF16_LEVERS else floor
                diff = diffs[(name, batch, lever)]
                print(
                    f"{name:<11} {batch:>5} {lever:<14} {per_clip * 1e3:>9.1f} "
                    + (f"{plain / per_clip:>8.2f}x " if plain else f"{'-':>9} ")
                    + (f"{plain_defaults / per_clip:>8.2f}x " if plain_defaults else f"{'-':>9} ")
                    + f"{per_clip / ref_floor.roofline_s:>8.2f}x {best / ref_floor.roofline_s:>5.2f}x "
                    + (f"{diff:>10.1e}" if diff is not None else f"{'-':>10}")
                    + (
                        f"   ({per_clip / floor.compute_s:.2f}x the float32 compute floor, "
                        f"{floor.compute_s * 1e3:.1f} ms; fastest call {best / floor.compute_s:.2f}x)"
                        if lever in BF16_LEVERS
                        else ""
                    )
                )
    for fast_name, base_name in (("vov3d_m", "x3d_m"), ("vov3d_l", "x3d_l"), ("vov3d_m_v2", "x3d_m")):
        for batch in args.batch_sizes:
            for lever in levers:
                a, b = results.get((fast_name, batch, lever)), results.get((base_name, batch, lever))
                if a and b:
                    print(
                        f"# {fast_name} vs {base_name}, batch {batch}, {lever}: {a * 1e3:.1f} vs {b * 1e3:.1f} ms/clip "
                        f"({b / a:.2f}x)"
                    )
            best = {}
            for name in (fast_name, base_name):
                timed = [(results[(name, batch, lv)], lv) for lv in PREPARED if (name, batch, lv) in results]
                if timed:
                    best[name] = min(timed)
            if len(best) == 2:
                (a, lv_a), (b, lv_b) = best[fast_name], best[base_name]
                print(
                    f"# {fast_name} vs {base_name}, batch {batch}, each at its fastest preparation: "
                    f"{a * 1e3:.1f} ({lv_a}) vs {b * 1e3:.1f} ms/clip ({lv_b}): {b / a:.2f}x"
                )


if __name__ == "__main__":
    main()
