"""`vov3d export`: the eval model as ONNX or TorchScript, checked against PyTorch (issue 17, item 4).

What is exported is the pure model in eval mode with the global-pool head (``ExportableClassifier``):
input a normalised clip (N, 3, T, H, W) float32, output logits (N, classes); in ONNX the batch, frame
and spatial axes are dynamic. Swish is ``torch.nn.functional.silu``, which both exporters know (ONNX:
Sigmoid and Mul). PyTorchVideo's X3D cannot be exported because its Swish is a custom
``torch.autograd.Function`` (a Python operator that neither ONNX nor TorchScript tracing can record:
their issue #184). After writing, the file is loaded back (onnxruntime / ``torch.jit.load``) and run on
a random clip of another batch size; the largest difference to PyTorch is printed and must be at most
the tolerance (1e-4), else the exit status is 1. The file is written under a temporary name and renamed
once exported and checked.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from vov3d.engine.predict import UsageError, add_model_arguments, load_task_model, run_main
from vov3d.utils.atomic import atomic_output_path

FORMATS = ("onnx", "torchscript")
INSTALL_HINT = "pip install 'vov3d[export]' (or: pip install onnx onnxruntime)"


class ExportableClassifier(nn.Module):
    """The model's stem, stages and head without the Python-side input checks, so that tracing records
    only tensor operations. Takes (N, 3, T, H, W), returns logits (N, classes)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        head = getattr(model, "head", None)
        if getattr(head, "pool", "global") != "global":
            raise ValueError("export needs the global-pool head (head_pool='global'), which any input size fits")
        self.model = model
        self.eval()

    def train(self, mode: bool = True) -> "ExportableClassifier":
        """Always eval mode: the exporters switch modules back to the mode they had, which for a fresh
        wrapper would be training mode (batch-statistics BN)."""
        return super().train(False)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.model.head(self.model.forward_features(clip))


def require_onnx() -> tuple[object, object]:
    """Import onnx and onnxruntime, or raise ImportError saying how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ImportError(f"ONNX export needs the optional packages onnx and onnxruntime ({err}): {INSTALL_HINT}") from None
    return onnx, onnxruntime


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path, opset: int = 17) -> None:
    """Write ``module`` as ONNX (TorchScript-based exporter; dynamic batch, frames, height and width)."""
    require_onnx()
    axes = {0: "batch", 2: "frames", 3: "height", 4: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        torch.onnx.export(module, (example,), str(path), input_names=["clip"], output_names=["logits"],
                          dynamic_axes={"clip": axes, "logits": {0: "batch"}}, opset_version=opset, dynamo=False)


def run_onnx(path: Path, clip: torch.Tensor) -> torch.Tensor:
    """Run an exported ONNX file in onnxruntime (CPU)."""
    _, ort = require_onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: clip.numpy()})
    return torch.from_numpy(np.asarray(out))


def export_torchscript(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Write ``module`` traced to TorchScript."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example, check_trace=False)
        traced.save(str(path))


def run_torchscript(path: Path, clip: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path), map_location="cpu")(clip)


def export_model(model: nn.Module, out: str | os.PathLike, fmt: str, frames: int = 16, size: int = 224,
                 opset: int = 17, seed: int = 0) -> dict[str, object]:
    """Export ``model`` to ``out`` in ``fmt`` and check it on a random clip.

    Returns {"path", "format", "max_abs_diff", "max_abs_output", "check_shape", "bytes"}. The file is renamed into place
    whatever the difference; the caller decides what a difference means.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--out {out}: folder {out.parent} does not exist")
    if fmt == "onnx":
        require_onnx()  # before any work
    module = ExportableClassifier(copy.deepcopy(model)).cpu().float()  # the caller's model is left as it is
    for p in module.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(1, 3, frames, size, size, generator=generator)
    check = torch.randn(2, 3, frames, size, size, generator=generator)  # another clip, another batch size
    with atomic_output_path(out) as tmp:
        if fmt == "onnx":
            export_onnx(module, example, tmp, opset)
            got = run_onnx(tmp, check)
        else:
            export_torchscript(module, example, tmp)
            got = run_torchscript(tmp, check)
        with torch.no_grad():
            want = module(check)
        diff = float((got.float() - want).abs().max())
        scale = float(want.abs().max())
    return {"path": str(out), "format": fmt, "max_abs_diff": diff, "max_abs_output": scale,
            "check_shape": tuple(check.shape),
            "bytes": out.stat().st_size}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vov3d export",
        description="Export the eval model (global-pool head) to ONNX or TorchScript and check it against PyTorch.")
    add_model_arguments(parser)
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx (runs in onnxruntime) or torchscript")
    parser.add_argument("--out", required=True, metavar="FILE", help="output file")
    parser.add_argument("--frames", type=int, default=16, metavar="T", help="frames of the example clip (default 16)")
    parser.add_argument("--size", type=int, default=224, metavar="S", help="height and width of the example clip (default 224)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed difference to PyTorch (default 1e-4)")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.frames < 1 or args.size < 1:
        raise UsageError("--frames and --size must be positive")
    task = load_task_model(args.model, args.checkpoint, args.pretrained)
    result = export_model(task.model, args.out, args.format, args.frames, args.size, args.opset)
    n, c, t, h, w = result["check_shape"]
    runner = "onnxruntime" if args.format == "onnx" else "torch.jit.load"
    print(f"exported {task.name} ({task.source}, {task.num_classes} classes) to {result['path']} "
          f"({args.format}, {result['bytes'] / 1e6:.1f} MB)")
    print(f"input 'clip' (N, 3, T, H, W) float32, normalised; output 'logits' (N, {task.num_classes})")
    ok = result["max_abs_diff"] <= args.tolerance
    print(f"check with {runner} on a random {n}x{c}x{t}x{h}x{w} clip: max |difference| to PyTorch "
          f"{result['max_abs_diff']:.3g} (tolerance {args.tolerance:g}; logits up to {result['max_abs_output']:.3g}): "
          f"{'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """`vov3d export`: see ``build_parser()``. Exit status 0 when the exported model matches PyTorch."""
    return run_main("vov3d export", build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
