"""Bitwise equivalence of the package before and after a refactoring (issue 15, "what must not change").

For every registered model at a tiny size (batch 2, 4x32x32, fixed seed, batch norms given non-trivial
statistics), saves to a ``.pt`` file:

* the plain model's eval output, and its training-mode loss and every gradient;
* ``prepare_for_inference``'s output with each backend that runs here: the kernels in float32 (also with
  every D(2+1)D layer in one pass), the kernels in bfloat16 (where the CPU has AVX512_BF16), the
  channels-last network in float32 and bfloat16, the module tree (the compiled backend is left out: it
  compiles for minutes on 2 cores);
* ``prepare_for_training``'s training-mode output, loss, every gradient and the running statistics after
  the step, with the training kernels and without them.

Runs against whichever ``vov3d`` is imported (``PYTHONPATH=<old tree>/src`` for the "before" side): it
speaks
both the old keyword flags (``fast=``/``kernels=``) and the new ``backend=`` (``"kernels"``, ``"channels_last"``,
``"eager"``). Then ``--compare A B`` checks
every tensor with ``torch.equal``.

    python benchmarks/layout_equivalence.py save before.pt     # with PYTHONPATH=/tmp/vov3d_before/src
    python benchmarks/layout_equivalence.py save after.pt
    python benchmarks/layout_equivalence.py compare before.pt after.pt
    python benchmarks/layout_equivalence.py time                # ms per clip of each variant (either tree)
"""

from __future__ import annotations

import argparse
import copy
import importlib
import inspect
import sys

import torch
import torch.nn.functional as F
from torch import nn

import vov3d

SHAPE = (2, 3, 4, 32, 32)
NUM_CLASSES = 10


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = vov3d.create_model(name, num_classes=NUM_CLASSES)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return torch.randn(SHAPE, generator=g), torch.randint(0, NUM_CLASSES, (SHAPE[0],), generator=g)


def _new_api() -> bool:
    return "backend" in inspect.signature(vov3d.prepare_for_inference).parameters


def _inference_variants() -> dict[str, dict]:
    """Keyword arguments of ``prepare_for_inference`` per variant, in the API of the imported package."""
    bf16 = torch.bfloat16
    if _new_api():
        return {
            "kernels_fp32": {"backend": "kernels"},
            "kernels_bf16": {"backend": "kernels", "dtype": bf16},
            "channels_last_fp32": {"backend": "channels_last"},
            "channels_last_bf16": {"backend": "channels_last", "dtype": bf16},
            "module_tree": {"backend": "eager"},
        }
    return {
        "kernels_fp32": {"kernels": True},
        "kernels_bf16": {"kernels": True, "dtype": bf16},
        "channels_last_fp32": {"fast": True},
        "channels_last_bf16": {"fast": True, "dtype": bf16},
        "module_tree": {"fast": False},
    }


def _one_pass_module():
    """The module whose ``ONE_PASS_BYTES`` decides when a D(2+1)D layer runs in one pass."""
    for name in ("vov3d.accel.kernel_network", "vov3d.models.fused_inference"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "ONE_PASS_BYTES"):
            return module
    raise ImportError("no module defines ONE_PASS_BYTES")


def _training(name: str, kernels: bool, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    model = _model(name).train()
    if _new_api():
        prepared = vov3d.prepare_for_training(model, backend="kernels" if kernels else "channels_last")
    else:
        prepared = vov3d.prepare_for_training(model, kernels=kernels)
        if not kernels:  # kernels=False in the old API: FastVideoClassifier without a library
            assert prepared.stem.lib is None
    prepared.train()
    torch.manual_seed(3)  # dropout
    out = prepared(x)
    loss = F.cross_entropy(out, labels)
    loss.backward()
    result = {"out": out.detach(), "loss": loss.detach()}
    for pname, p in model.named_parameters():
        result[f"grad.{pname}"] = p.grad.clone()
    for bname, b in model.named_buffers():
        result[f"buffer.{bname}"] = b.clone()
    return result


def save(path: str) -> None:
    print(f"vov3d from {vov3d.__file__}; new API: {_new_api()}", file=sys.stderr)
    x, labels = _inputs()
    results: dict[str, torch.Tensor] = {}
    for name in vov3d.list_models():
        model = _model(name)
        with torch.no_grad():
            results[f"{name}/plain_eval"] = model(x)
        plain = copy.deepcopy(model).train()
        torch.manual_seed(3)
        loss = F.cross_entropy(plain(x), labels)
        loss.backward()
        results[f"{name}/plain_train/loss"] = loss.detach()
        for pname, p in plain.named_parameters():
            results[f"{name}/plain_train/grad.{pname}"] = p.grad.clone()
        for variant, kwargs in _inference_variants().items():
            try:
                prepared = vov3d.prepare_for_inference(_model(name), **kwargs)
            except (RuntimeError, ValueError) as exc:  # bfloat16 kernels without AVX512_BF16
                print(f"{name}/{variant}: skipped ({exc})", file=sys.stderr)
                continue
            results[f"{name}/infer/{variant}"] = prepared(x)
        module = _one_pass_module()
        before, module.ONE_PASS_BYTES = module.ONE_PASS_BYTES, 0
        try:
            for dtype in (torch.float32, torch.bfloat16):
                kwargs = {"backend": "kernels"} if _new_api() else {"kernels": True}
                try:
                    prepared = vov3d.prepare_for_inference(_model(name), dtype=dtype, **kwargs)
                except (RuntimeError, ValueError) as exc:
                    print(f"{name}/one pass {dtype}: skipped ({exc})", file=sys.stderr)
                    continue
                results[f"{name}/infer/kernels_one_pass_{str(dtype)[6:]}"] = prepared(x)
        finally:
            module.ONE_PASS_BYTES = before
        for kernels in (True, False):
            for key, value in _training(name, kernels, x, labels).items():
                results[f"{name}/train_{'kernels' if kernels else 'eager'}/{key}"] = value
        print(f"{name}: done", file=sys.stderr)
    torch.save(results, path)
    print(f"saved {len(results)} tensors to {path}", file=sys.stderr)


def compare(path_a: str, path_b: str) -> int:
    a = torch.load(path_a, weights_only=True)
    b = torch.load(path_b, weights_only=True)
    missing = sorted(set(a) ^ set(b))
    different = [k for k in sorted(set(a) & set(b)) if not (a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]))]
    for k in missing:
        print(f"only in {'the first' if k in a else 'the second'}: {k}")
    for k in different:
        print(f"differs: {k} (max |diff| {(a[k].double() - b[k].double()).abs().max().item():.3g})")
    print(f"{len(set(a) & set(b)) - len(different)} of {len(set(a) | set(b))} tensors bitwise equal")
    return 1 if missing or different else 0


def time_variants(frames: int, size: int, iters: int, names: list[str]) -> None:
    """Median ms per clip (batch 1) of the plain model and each float32 inference variant, in this process."""
    import statistics
    import time

    print(f"vov3d from {vov3d.__file__}; {frames}x{size}x{size}, batch 1, median of {iters}", file=sys.stderr)
    x = torch.randn(1, 3, frames, size, size, generator=torch.Generator().manual_seed(2))
    variants = {k: v for k, v in _inference_variants().items() if "bf16" not in k}
    for name in names:
        runners = {"plain": _model(name)}
        runners.update({variant: vov3d.prepare_for_inference(_model(name), **kw) for variant, kw in variants.items()})
        cells = []
        with torch.inference_mode():
            for variant, runner in runners.items():
                runner(x)
                times = []
                for _ in range(iters):
                    t0 = time.perf_counter()
                    runner(x)
                    times.append(time.perf_counter() - t0)
                cells.append(f"{variant} {statistics.median(times) * 1e3:.1f}")
        print(f"{name}: " + ", ".join(cells) + " ms", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("save").add_argument("path")
    cmp = sub.add_parser("compare")
    cmp.add_argument("a")
    cmp.add_argument("b")
    timing = sub.add_parser("time")
    timing.add_argument("--frames", type=int, default=8)
    timing.add_argument("--size", type=int, default=112)
    timing.add_argument("--iters", type=int, default=5)
    timing.add_argument("--models", nargs="+", default=["vov3d_m", "x3d_m"])
    args = parser.parse_args(argv)
    if args.command == "time":
        time_variants(args.frames, args.size, args.iters, args.models)
        return 0
    if args.command == "save":
        save(args.path)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    raise SystemExit(main())
