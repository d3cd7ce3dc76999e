"""Training throughput: clips per second per process for VoV3D-M/L and X3D-M/L, and the fraction of the
device's peak it reaches (issue 18, item 5).

    python benchmarks/train_throughput.py                                  # GPU if present: 16x224², batch 8
    python benchmarks/train_throughput.py --models vov3d_l --batch-size 16 --steps 20
    torchrun --nproc-per-node 8 benchmarks/train_throughput.py             # per GPU, under DDP, 8 processes
    python benchmarks/train_throughput.py --device cpu --frames 4 --size 32 --batch-size 2 --steps 1   # tiny, CPU

A step is what the trainer does: train mode, forward, cross-entropy, backward, Nesterov SGD step
(``engine.optimizer.build_optimizer``), on one fixed random batch of ``--batch-size`` clips per process
(data loading is not timed: ``benchmarks/data.py`` times that). On a GPU by default: mixed precision
(autocast to bfloat16 where the GPU supports it, else float16 with a GradScaler), the model and input in
``channels_last_3d``, ``cudnn.benchmark`` on and TF32 allowed; ``--precision`` and ``--layout`` override.
Under torchrun the model is wrapped in DDP (``engine.distributed``), every process times its own steps and
rank 0 prints one row per model with the mean per process and the job's total.

Columns: clips/s per process (median step time over ``--steps`` timed steps after ``--warmup``), ms per
step, GFLOPs per clip (forward, 2 per multiply-add, ``vov3d.models.complexity``), the achieved TFLOP/s (a
training step counted as 3x the forward), the device's peak TFLOP/s measured in the same run with
``torch.mm`` of two n x n matrices in the step's compute type (bfloat16/float16, TF32 or float32), and
the achieved fraction of that peak.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vov3d.engine import distributed as D
from vov3d.engine.optimizer import build_optimizer
from vov3d.models import create_model
from vov3d.models.complexity import count_gmacs

MODELS = ["vov3d_m", "vov3d_l", "x3d_m", "x3d_l"]
COLUMNS = ["model", "device", "procs", "batch", "frames", "size", "precision", "layout", "clips_s", "ms_step",
           "gflops_clip", "tflops", "peak_tflops", "x_peak"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS + ["vov3d_m_v2"])
    parser.add_argument("--batch-size", type=int, default=8, help="clips per process and step")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (cudnn.benchmark's search)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="auto: bf16 (or fp16) autocast on a GPU, fp32 on the CPU")
    parser.add_argument("--layout", choices=["auto", "ncdhw", "channels_last_3d"], default="auto",
                        help="auto: channels_last_3d on a GPU, ncdhw on the CPU")
    parser.add_argument("--peak-n", type=int, default=0,
                        help="matrix size of the peak measurement (0: 8192 on a GPU, 1024 on the CPU)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON lines here")
    return parser


def resolve(args: argparse.Namespace) -> tuple[torch.device, str, str]:
    """The device (this process's GPU under torchrun), the precision and the layout to use."""
    cuda = torch.cuda.is_available() if args.device == "auto" else args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA GPU is present")
    device = torch.device("cuda", D.get_local_rank()) if cuda else torch.device("cpu")
    precision = args.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    layout = args.layout if args.layout != "auto" else ("channels_last_3d" if cuda else "ncdhw")
    return device, precision, layout


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_tflops(device: torch.device, precision: str, n: int, iters: int = 5) -> float:
    """TFLOP/s of ``torch.mm`` of two n x n matrices in the step's compute type (2 FLOPs per multiply-add)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    times = []
    for _ in range(iters):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e12


def measure(name: str, args: argparse.Namespace, device: torch.device, precision: str, layout: str,
            peak: float) -> dict:
    """One model's row (this process's measurement, averaged over the processes under torchrun)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=400).to(device)
    gflops = 2 * count_gmacs(model, args.frames, args.size)
    memory_format = torch.channels_last_3d if layout == "channels_last_3d" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    x = torch.randn(args.batch_size, 3, args.frames, args.size, args.size, device=device)
    x = x.contiguous(memory_format=memory_format)
    y = torch.randint(0, 400, (args.batch_size,), device=device)
    train_model = D.wrap_ddp(model, device)
    optimizer = build_optimizer(model, lr=0.01)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext():
            loss = F.cross_entropy(train_model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    clips_s = float(D.all_reduce_mean(torch.tensor([args.batch_size / seconds], dtype=torch.float64,
                                                   device=device)).item())
    tflops = 3 * gflops * clips_s / 1e3
    return {"model": name, "device": device.type, "procs": D.get_world_size(), "batch": args.batch_size,
            "frames": args.frames, "size": args.size, "precision": precision, "layout": layout,
            "clips_s": clips_s, "ms_step": args.batch_size / clips_s * 1e3, "gflops_clip": gflops,
            "tflops": tflops, "peak_tflops": peak, "x_peak": tflops / peak}


def format_row(row: dict) -> str:
    return (f"{row['model']:<10} {row['device']:<5} {row['procs']:>5} {row['batch']:>5} {row['frames']:>6} "
            f"{row['size']:>4} {row['precision']:<9} {row['layout']:<16} {row['clips_s']:>9.2f} "
            f"{row['ms_step']:>9.1f} {row['gflops_clip']:>11.3f} {row['tflops']:>8.4f} {row['peak_tflops']:>11.4f} "
            f"{row['x_peak']:>7.3f}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.batch_size, args.frames, args.size, args.steps) < 1 or args.warmup < 0:
        raise SystemExit("error: --batch-size, --frames, --size and --steps must be >= 1, --warmup >= 0")
    if D.under_torchrun():
        D.init_from_env()
    device, precision, layout = resolve(args)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    peak = peak_tflops(device, precision, args.peak_n or (8192 if device.type == "cuda" else 1024))
    rows = [measure(name, args, device, precision, layout, peak) for name in args.models]
    if D.is_main_process():
        name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"CPU, {torch.get_num_threads()} threads")
        print(f"# torch {torch.__version__}, {name}, {D.get_world_size()} process(es); clips/s per process "
              f"(job total = x procs); a step = 3x the forward FLOPs")
        print("model      dev   procs batch frames size precision layout             clips/s   ms/step "
              "GFLOPs/clip   TFLOP/s  peak TFLOP/s  x peak")
        for row in rows:
            print(format_row(row))
        if args.json:
            args.json.write_text("".join(json.dumps(row) + "\n" for row in rows))
    D.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
