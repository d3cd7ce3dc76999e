"""`vov3d bench`: inference speed of models and backends side by side, and the data loader's clips/s.

Issue 17, item 5. For each model, backend and batch size: a random clip (N, 3, T, S, S), ``--warmup``
untimed calls, then the median of ``--iters`` timed calls. Batch 1 gives the latency (ms per call),
larger batches the throughput (clips/s). Ratios are speed-ups measured in the same run: ``x eager``
(the plain eval model of the same model and batch over this backend) and ``x X3D`` (the X3D of the
same size, ``x3d_m`` for VoV3D-M and ``x3d_l`` for VoV3D-L, with the same backend, over this row).

Backends: ``eager`` (the eval model under ``torch.inference_mode``), ``prepared``
(``vov3d.accel.prepare_for_inference`` with its defaults), ``compiled`` (``torch.compile``; the
compilation happens in the warm-up and is not timed), ``onnxruntime`` (the model exported as
``vov3d export`` does, run by onnxruntime's CPU or CUDA provider). A backend that is not available
here is listed with the reason instead of numbers.

``--data CFG`` measures the training loader instead, as the original's ``tools/benchmark.py`` does:
it iterates the train split's loader (TRAIN.BATCH_SIZE, DATA_LOADER.NUM_WORKERS) for
BENCHMARK.NUM_EPOCHS epochs (or ``--data-iters`` batches) and reports clips/s. CFG is a YAML config
(``vov3d.config.load_config``) or a Kinetics-format folder (``train.csv`` and videos).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from vov3d.engine.predict import UsageError, parse_device, run_main
from vov3d.models import create_model, list_models

BACKENDS = ("eager", "prepared", "compiled", "onnxruntime")
X3D_OF = {"vov3d_m": "x3d_m", "vov3d_m_v2": "x3d_m", "vov3d_l": "x3d_l"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], Any], iters: int, warmup: int, device: torch.device) -> float:
    """Median wall time of ``iters`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_runner(model: nn.Module, backend: str, device: torch.device, example: torch.Tensor,
                workdir: Path) -> Callable[[torch.Tensor], Any]:
    """A callable running ``model`` with ``backend``; raises RuntimeError(reason) where it is not available."""
    if backend == "eager":
        def eager(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return model(x)
        return eager
    if backend == "prepared":
        from vov3d.accel import prepare_for_inference

        return prepare_for_inference(model)
    if backend == "compiled":
        if not hasattr(torch, "compile"):
            raise RuntimeError("torch.compile needs torch >= 2.0")
        compiled = torch.compile(model)

        def run_compiled(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return compiled(x)
        return run_compiled
    if backend == "onnxruntime":
        from vov3d.engine.export import ExportableClassifier, export_onnx

        try:
            import onnx  # noqa: F401 (the exporter needs it)
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("onnx/onnxruntime not installed (pip install 'vov3d[export]')") from None
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("this onnxruntime has no CUDA provider")
            providers = ["CUDAExecutionProvider"]
        path = workdir / f"model_{id(model)}.onnx"
        export_onnx(ExportableClassifier(copy.deepcopy(model)).cpu(), example[:1].cpu(), path)  # a copy: the
        # model itself stays on its device for the other backends
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=providers)
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x.cpu().numpy()})
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def bench_models(models: Sequence[str], backends: Sequence[str], batches: Sequence[int], frames: int, size: int,
                 iters: int, warmup: int, device: torch.device, num_classes: int = 400,
                 log: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    """One row per (model, backend): seconds per call for each batch size, or the reason it was skipped,
    and the speed-up ratios."""
    rows = []
    generator = torch.Generator().manual_seed(0)
    inputs = {b: torch.randn(b, 3, frames, size, size, generator=generator).to(device) for b in batches}
    with tempfile.TemporaryDirectory(prefix="vov3d_bench_") as tmp:
        for name in models:
            torch.manual_seed(0)
            model = create_model(name, num_classes=num_classes).eval().to(device)
            for backend in backends:
                row: dict[str, Any] = {"model": name, "backend": backend, "seconds": {}, "skipped": None}
                try:
                    runner = make_runner(model, backend, device, inputs[batches[0]], Path(tmp))
                except RuntimeError as err:
                    row["skipped"] = str(err)
                    rows.append(row)
                    log(f"{name} {backend}: skipped ({err})")
                    continue
                for b in batches:
                    x = inputs[b]
                    row["seconds"][b] = median_seconds(lambda: runner(x), iters, warmup, device)
                    log(f"{name} {backend} batch {b}: {row['seconds'][b] * 1e3:.1f} ms per call")
                rows.append(row)
    _add_ratios(rows, batches)
    return rows


def _add_ratios(rows: list[dict[str, Any]], batches: Sequence[int]) -> None:
    found = {(r["model"], r["backend"]): r for r in rows if not r["skipped"]}
    for row in rows:
        row["x_eager"], row["x_x3d"] = {}, {}
        if row["skipped"]:
            continue
        eager = found.get((row["model"], "eager"))
        x3d = found.get((X3D_OF.get(row["model"], ""), row["backend"]))
        for b in batches:
            own = row["seconds"][b]
            row["x_eager"][b] = eager["seconds"][b] / own if eager else None
            row["x_x3d"][b] = x3d["seconds"][b] / own if x3d else None


def format_rows(rows: list[dict[str, Any]], batches: Sequence[int]) -> str:
    """The table: per batch size, ms per call (batch 1) or clips/s (larger), and the two speed-ups."""
    header = ["model", "backend"]
    for b in batches:
        header += [f"b{b} ms" if b == 1 else f"b{b} clips/s", f"b{b} x eager", f"b{b} x X3D"]
    ratio = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    table, skipped = [header], {}
    for r in rows:
        line = [r["model"], r["backend"]]
        if r["skipped"]:
            skipped[len(table)] = f"skipped: {r['skipped']}"
        else:
            for b in batches:
                s = r["seconds"][b]
                line += [f"{s * 1e3:.1f}" if b == 1 else f"{b / s:.1f}", ratio(r["x_eager"][b]), ratio(r["x_x3d"][b])]
        table.append(line)
    widths = [max(len(row[i]) for row in table if i < len(row)) for i in range(len(header))]
    out = []
    for n, row in enumerate(table):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells + ([skipped[n]] if n in skipped else [])).rstrip())
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------ data loader


def _open_train_split(data: str, opts: Sequence[str], frames: int, size: int) -> tuple[Any, int, int, int]:
    """(dataset, batch size, workers, epochs) of a YAML config or a Kinetics-format folder."""
    path = Path(data)
    if path.is_dir():
        from vov3d.data import ClipParams, build_dataset

        jitter = (size, max(size, size * 8 // 7))
        params = ClipParams(num_frames=frames, train_crop_size=size, test_crop_size=size, train_jitter_scales=jitter)
        return build_dataset("kinetics", path, "train", params=params), 8, 2, 1
    if not path.is_file():
        raise FileNotFoundError(f"--data {data}: neither a config file nor a dataset folder")
    from vov3d.config import builders, load_config

    cfg = load_config(path, list(opts))
    batch = builders.per_process_batch_size(cfg, "train", 1)
    return builders.build_dataset(cfg, "train"), batch, int(cfg.DATA_LOADER.NUM_WORKERS), int(cfg.BENCHMARK.NUM_EPOCHS)


def bench_data(data: str, opts: Sequence[str] = (), frames: int = 16, size: int = 224, iters: int | None = None,
               workers: int | None = None, batch_size: int | None = None,
               log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Iterate the train loader; clips/s over the batches after the first (which includes worker start-up)."""
    from vov3d.data import build_loader, set_epoch

    dataset, batch, num_workers, epochs = _open_train_split(data, opts, frames, size)
    batch = batch_size or batch
    num_workers = num_workers if workers is None else workers
    loader = build_loader(dataset, batch, shuffle=True, drop_last=False, num_workers=num_workers, seed=0)
    clips, seconds, batches = 0, 0.0, 0
    start_all = time.perf_counter()
    for epoch in range(epochs):
        set_epoch(loader, epoch)
        last = time.perf_counter()
        for i, (clip, *_rest) in enumerate(loader):
            now = time.perf_counter()
            if epoch > 0 or i > 0:  # the first batch waits for the workers to start
                clips += clip.shape[0]
                seconds += now - last
            batches += 1
            last = now
            if iters is not None and batches >= iters:
                break
        log(f"epoch {epoch}: {batches} batches so far, {clips / seconds if seconds else 0:.1f} clips/s")
        if iters is not None and batches >= iters:
            break
    return {"data": str(data), "videos": len(dataset), "batch_size": batch, "workers": num_workers,
            "batches": batches, "clips_per_second": clips / seconds if seconds else None,
            "seconds": time.perf_counter() - start_all}


# ---------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vov3d bench",
        description="Inference latency and throughput of models and backends side by side (or, with --data, "
                    "the data loader's clips/s).")
    parser.add_argument("--models", nargs="+", default=["vov3d_m", "x3d_m"], metavar="NAME",
                        help=f"models (default vov3d_m x3d_m): {', '.join(list_models())}")
    parser.add_argument("--frames", type=int, default=16, metavar="T", help="frames per clip (default 16)")
    parser.add_argument("--size", type=int, default=224, metavar="S", help="height = width (default 224)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8], metavar="N", help="batch sizes (default 1 8)")
    parser.add_argument("--iters", type=int, default=10, help="timed calls per measurement (median; default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--backends", default="eager,prepared", metavar="LIST",
                        help=f"comma-separated, from {','.join(BACKENDS)} (default eager,prepared)")
    parser.add_argument("--num-classes", type=int, default=400)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--data", metavar="CFG", help="measure the train loader of a config file or Kinetics folder instead")
    parser.add_argument("--data-iters", type=int, metavar="N", help="with --data: stop after N batches")
    parser.add_argument("--workers", type=int, help="with --data: loader workers (default: the config's, or 2)")
    parser.add_argument("--data-batch", type=int, metavar="N", help="with --data: batch size (default: the config's, or 8)")
    parser.add_argument("--opts", nargs="*", default=[], metavar="KEY VALUE", help="with --data CFG: config overrides")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    log = (lambda s: print(s, file=sys.stderr)) if not args.json else (lambda s: None)
    if args.data:
        result = bench_data(args.data, args.opts, args.frames, args.size, args.data_iters, args.workers,
                            args.data_batch, log)
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            rate = result["clips_per_second"]
            print(f"data loader of {result['data']}: {result['videos']} videos, batch {result['batch_size']}, "
                  f"{result['workers']} workers, {result['batches']} batches in {result['seconds']:.1f} s: "
                  + (f"{rate:.1f} clips/s" if rate else "too few batches to time (need 2)"))
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise UsageError(f"unknown backend {', '.join(unknown) or '(none)'}; choose from {', '.join(BACKENDS)}")
    bad = [m for m in args.models if m not in list_models()]
    if bad:
        raise ValueError(f"unknown model {bad[0]!r}; available models: {', '.join(list_models())}")
    if min(args.batch) < 1 or args.iters < 1 or args.warmup < 0 or args.frames < 1 or args.size < 1:
        raise UsageError("--batch, --iters, --frames and --size must be positive, --warmup >= 0")
    device = parse_device(args.device)
    batches = list(dict.fromkeys(args.batch))
    rows = bench_models(args.models, backends, batches, args.frames, args.size, args.iters, args.warmup, device,
                        args.num_classes, log)
    if args.json:
        print(json.dumps({"device": str(device), "threads": torch.get_num_threads(), "frames": args.frames,
                          "size": args.size, "iters": args.iters, "warmup": args.warmup, "torch": torch.__version__,
                          "rows": rows}, indent=1))
    else:
        print(f"vov3d bench: {device}, {torch.get_num_threads()} threads, clip {args.frames}x{args.size}², "
              f"median of {args.iters} calls after {args.warmup} warm-up, torch {torch.__version__}")
        print(format_rows(rows, batches), end="")
        print("x eager: speed-up over the eager model; x X3D: speed-up over the X3D of the same size, same backend")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`vov3d bench`: see ``build_parser()``."""
    return run_main("vov3d bench", build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
