"""VoV3D-L and X3D-L on a GPU: inference and training throughput per configuration, the fraction of the GPU's
peak each reaches, and the fastest correct configuration (issue 4, item 5).

    python benchmarks/gpu.py                                   # vov3d_l and x3d_l, 16x224², batch 8, cuda
    python benchmarks/gpu.py --models vov3d_l --batch-size 16 --iters 20
    python benchmarks/gpu.py --device cpu --frames 4 --size 32 --batch-size 2 --iters 1   # the same code on the CPU

No GPU has been lent to this project yet, so no numbers of it are in RESULTS.md; the test suite runs this
script on the CPU at a tiny size (``--device cpu``) so that it is ready when one is.

Configurations, each on the same weights and the same input:

* ``fp32``: the model as built (NCDHW), float32 with TF32 off (``torch.backends.cuda.matmul.allow_tf32``
  and ``torch.backends.cudnn.allow_tf32`` False);
* ``tf32``: the same with TF32 allowed for convolutions and matrix products;
* ``cl``: ``channels_last_3d`` model and input, TF32 allowed;
* ``bf16``: ``torch.autocast`` to bfloat16, NCDHW;
* ``bf16_cl``: autocast to bfloat16 and ``channels_last_3d``;
* ``prepared`` (inference only): ``vov3d.prepare_for_inference(model)``, what vov3d does on a GPU today (BN
  folded, the module tree in ``channels_last_3d``), TF32 allowed.

Inference: eval mode, no gradients. Training: train mode, forward, cross-entropy, backward and an SGD step.
Both in clips per second (median of ``--iters`` timed calls after a warm-up, the device synchronised around
each). "x peak": the model's FLOPs per second (2 per multiply-add, ``vov3d.models.complexity``; a training step
counts 3x the forward) over the peak matrix-product rate measured in the same run for what the configuration
computes in (float32 without TF32, TF32, or bfloat16: ``torch.mm`` of two n x n matrices). "Correct", against
float32 without TF32 on the same input: inference logits within 1% (float32, TF32) or 5% (bfloat16) of the
largest logit; training, the first step's gradient (all parameters, dropout off) at a cosine of at least 0.999
(float32, TF32) or 0.9 (bfloat16: autocast's gradients differ by several percent at random init, which
mixed-precision training accepts; the bound catches broken results, not rounding).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import vov3d
from common import time_call
from vov3d.models.complexity import model_complexity


@dataclass(frozen=True)
class Config:
    tf32: bool
    channels_last: bool
    bf16: bool


CONFIGS = {
    "fp32": Config(tf32=False, channels_last=False, bf16=False),
    "tf32": Config(tf32=True, channels_last=False, bf16=False),
    "cl": Config(tf32=True, channels_last=True, bf16=False),
    "bf16": Config(tf32=True, channels_last=False, bf16=True),
    "bf16_cl": Config(tf32=True, channels_last=True, bf16=True),
}
# Largest error counted correct, (float32 / TF32, bfloat16): inference max |logit diff| / max |logit|;
# training 1 - the cosine between the first step's gradient and float32's.
TOLERANCE = {"inference": (0.01, 0.05), "training": (0.001, 0.1)}


def set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn, device: torch.device, iters: int, warmup: int = 2) -> float:
    """``common.time_call`` with the device synchronised after each call (GPU work is asynchronous)."""
    return time_call(lambda: (fn(), synchronize(device)), warmup=warmup, iters=iters)


def peak_tflops(device: torch.device, kind: str, n: int, iters: int) -> float:
    """TFLOP/s of ``torch.mm`` of two n x n matrices: ``fp32`` (TF32 off), ``tf32`` or ``bf16``."""
    set_tf32(kind == "tf32")
    dtype = torch.bfloat16 if kind == "bf16" else torch.float32
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    out = torch.empty(n, n, device=device, dtype=dtype)
    seconds = median_seconds(lambda: torch.mm(a, b, out=out), device, iters)
    return 2 * n**3 / seconds / 1e12


def autocast(device: torch.device, config: Config):
    return torch.autocast(device.type, dtype=torch.bfloat16) if config.bf16 else contextlib.nullcontext()


def place(model: torch.nn.Module, x: torch.Tensor, config: Config) -> tuple[torch.nn.Module, torch.Tensor]:
    if config.channels_last:
        return model.to(memory_format=torch.channels_last_3d), x.contiguous(memory_format=torch.channels_last_3d)
    return model, x


def gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, config: Config) -> torch.Tensor:
    """All parameters' gradients of one training forward and backward, flattened (float32); dropout off, so
    that every configuration computes the same function."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    model.zero_grad(set_to_none=True)
    with autocast(x.device, config):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    return torch.cat([p.grad.float().flatten() for p in model.parameters() if p.grad is not None])


def measure(name: str, args: argparse.Namespace, device: torch.device, peaks: dict[str, float]) -> list[dict]:
    torch.manual_seed(0)
    base = vov3d.create_model(name, num_classes=400).to(device)
    shape = (args.batch_size, 3, args.frames, args.size, args.size)
    x = torch.randn(shape, device=device)
    y = torch.randint(0, 400, (args.batch_size,), device=device)
    gflop = 2 * model_complexity(name, frames=args.frames, size=args.size)["gflops"]  # per clip, forward
    rows = []

    set_tf32(False)  # the references: float32 without TF32
    with torch.no_grad():
        reference = base.eval()(x).float()
    reference_grad = gradient(copy.deepcopy(base).train(), x, y, CONFIGS["fp32"])

    for mode in ("inference", "training"):
        ways = list(CONFIGS) + (["prepared"] if mode == "inference" else [])
        for way in ways:
            config = CONFIGS.get(way, CONFIGS["tf32"])
            set_tf32(config.tf32)
            model = copy.deepcopy(base)
            if way == "prepared":
                model = vov3d.prepare_for_inference(model)
                xin = x
            else:
                model, xin = place(model, x, config)
            if mode == "inference":
                if way != "prepared":
                    model.eval()

                def run():
                    with torch.no_grad(), autocast(device, config):
                        return model(xin)

                error = ((run().float() - reference).abs().max() / reference.abs().max()).item()
            else:
                model.train()
                grad = gradient(copy.deepcopy(model), xin, y, config)
                error = 1 - F.cosine_similarity(grad.double(), reference_grad.double(), dim=0).item()
                optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

                def run():
                    optimizer.zero_grad(set_to_none=True)
                    with autocast(device, config):
                        loss = F.cross_entropy(model(xin), y)
                    loss.backward()
                    optimizer.step()

            seconds = median_seconds(run, device, args.iters)
            clips = args.batch_size / seconds
            flops = gflop * 1e9 * clips * (3 if mode == "training" else 1)
            peak_kind = "bf16" if config.bf16 else "tf32" if config.tf32 else "fp32"
            limit = TOLERANCE[mode][1 if config.bf16 else 0]
            rows.append(dict(model=name, mode=mode, way=way, clips=clips, ms=1e3 / clips,
                             peak=flops / (peaks[peak_kind] * 1e12), peak_kind=peak_kind, error=error,
                             correct=error <= limit))
            del model
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vov3d_l", "x3d_l"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--iters", type=int, default=10, help="timed calls per measurement (median)")
    parser.add_argument("--matmul-size", type=int, default=None, help="n of the peak-rate product (8192 on a GPU)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark is for a GPU (--device cpu runs the same code on the CPU)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# torch {torch.__version__}, device: {name}, cuDNN {torch.backends.cudnn.version()}")
    n = args.matmul_size or (8192 if device.type == "cuda" else 1024)
    peaks = {kind: peak_tflops(device, kind, n, max(args.iters, 3)) for kind in ("fp32", "tf32", "bf16")}
    rates = ", ".join(f"{k} {v:.1f} TFLOP/s" for k, v in peaks.items())
    print(f"# peak matrix-product rate (torch.mm, {n}²): {rates}")
    print(f"# input {args.batch_size}x3x{args.frames}x{args.size}x{args.size}; clips/s, median of {args.iters}")
    print(f"{'model':10s} {'mode':9s} {'config':9s} {'clips/s':>9s} {'ms/clip':>9s} {'x peak':>8s}  error vs fp32 "
          "(inference: max |logit diff| / max |logit|; training: 1 - gradient cosine)")
    rows = []
    for model_name in args.models:
        for row in measure(model_name, args, device, peaks):
            rows.append(row)
            verdict = "" if row["correct"] else "  (not correct)"
            print(f"{row['model']:10s} {row['mode']:9s} {row['way']:9s} {row['clips']:9.1f} {row['ms']:9.2f} "
                  f"{row['peak']:7.1%} {row['peak_kind']:>4s}  {row['error']:.1e}{verdict}")
    for model_name in args.models:
        for mode in ("inference", "training"):
            mine = [r for r in rows if r["model"] == model_name and r["mode"] == mode]
            best = max((r for r in mine if r["correct"]), key=lambda r: r["clips"], default=None)
            fp32 = next(r for r in mine if r["way"] == "fp32")
            if best is None:
                print(f"# fastest correct, {model_name} {mode}: none")
            else:
                print(f"# fastest correct, {model_name} {mode}: {best['way']} ({best['clips']:.1f} clips/s, "
                      f"{best['clips'] / fp32['clips']:.2f}x fp32, {best['peak']:.1%} of the {best['peak_kind']} peak)")


if __name__ == "__main__":
    main()
