"""How much the training engine adds to the bare training step, and whether the loader keeps up.

Prints, in one run and at the same settings (model, clip size, batch, backend, threads):

* engine epoch:  clips/s of ``vov3d.engine.trainer.train_epoch`` (loader, LR schedule, step, NaN
  check, metrics, json_stats/progress lines), timed over whole epochs;
* bare step:     clips/s of the training model's forward + loss + backward + optimizer step on the
  same batches, already in memory;
* data loader:   clips/s of iterating the training loader alone (decoding, sampling, transforms);
* the ratios engine/step (goal >= 0.9) and loader/step (goal >= 1: the loader is not the bottleneck).

By default it writes a small synthetic dataset (``vov3d.data.synth``) to a temporary folder;
``--data`` points to an existing Kinetics-layout folder instead. A tiny run:

    python benchmarks/engine.py --frames 4 --size 32 --batch-size 2 --videos 8 --epochs 1

Note that with ``--workers 0`` the loader runs in the training process, so the engine's epoch
contains the loading time and the ratio is bounded by the loader's speed; with workers the loading
overlaps the step, on the cores the step does not use.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="Kinetics-layout dataset folder (default: synthetic)")
    p.add_argument("--videos", type=int, default=32, help="synthetic training videos (with --data unset)")
    p.add_argument("--model", default="vov3d_m", choices=["vov3d_m", "vov3d_m_v2", "vov3d_l", "x3d_m", "x3d_l"])
    p.add_argument("--frames", type=int, default=16, help="DATA.NUM_FRAMES")
    p.add_argument("--size", type=int, default=112, help="DATA.TRAIN_CROP_SIZE (jitter scales size..size*8/7)")
    p.add_argument("--batch-size", type=int, default=8, help="TRAIN.BATCH_SIZE")
    p.add_argument("--workers", type=int, default=2, help="DATA_LOADER.NUM_WORKERS")
    p.add_argument("--backend", default="auto", choices=["auto", "kernels", "compiled", "eager"], help="TRAIN.BACKEND")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    return p.parse_args(argv)


_MODEL_KEYS = {
    "vov3d_m": ["MODEL.ARCH", "vov3d", "MODEL.MODEL_NAME", "VoV3D", "VOV3D.DEPTH", "31", "VOV3D.NUM_CONV", "4",
                "VOV3D.INNER_CH", "48"],
    "vov3d_m_v2": ["MODEL.ARCH", "vov3d", "MODEL.MODEL_NAME", "VoV3D", "VOV3D.DEPTH", "31", "VOV3D.NUM_CONV", "5",
                   "VOV3D.INNER_CH", "40"],
    "vov3d_l": ["MODEL.ARCH", "vov3d", "MODEL.MODEL_NAME", "VoV3D", "VOV3D.DEPTH", "70", "VOV3D.NUM_CONV", "5",
                "VOV3D.INNER_CH", "48"],
    "x3d_m": ["MODEL.ARCH", "x3d", "MODEL.MODEL_NAME", "X3D", "RESNET.TRANS_FUNC", "x3d_transform",
              "X3D.DEPTH_FACTOR", "2.2", "X3D.WIDTH_FACTOR", "2.0", "X3D.BOTTLENECK_FACTOR", "2.25"],
    "x3d_l": ["MODEL.ARCH", "x3d", "MODEL.MODEL_NAME", "X3D", "RESNET.TRANS_FUNC", "x3d_transform",
              "X3D.DEPTH_FACTOR", "5.0", "X3D.WIDTH_FACTOR", "2.0", "X3D.BOTTLENECK_FACTOR", "2.25"],
}


def build_cfg(args: argparse.Namespace, data_dir: Path, output_dir: Path) -> Any:
    from vov3d.config import load_config

    jitter_max = max(args.size, args.size * 8 // 7)
    opts = [
        "NUM_GPUS", "0", "OUTPUT_DIR", str(output_dir), "DATA.PATH_TO_DATA_DIR", str(data_dir),
        "TRAIN.DATASET", "kinetics", "TEST.ENABLE", "False", "TRAIN.AUTO_RESUME", "False",
        "TRAIN.EVAL_PERIOD", "1000", "TRAIN.CHECKPOINT_PERIOD", "1000", "BN.USE_PRECISE_STATS", "False",
        "TRAIN.BATCH_SIZE", str(args.batch_size), "TRAIN.BACKEND", args.backend,
        "DATA.NUM_FRAMES", str(args.frames), "DATA.SAMPLING_RATE", "2", "DATA.TRAIN_CROP_SIZE", str(args.size),
        "DATA.TEST_CROP_SIZE", str(args.size), "DATA.TRAIN_JITTER_SCALES", f"[{args.size}, {jitter_max}]",
        "DATA_LOADER.NUM_WORKERS", str(args.workers), "DATA_LOADER.PIN_MEMORY", "False",
        "MODEL.NUM_CLASSES", "12", "SOLVER.MAX_EPOCH", str(args.epochs + 2), "LOG_PERIOD", "1000000",
        "LOG_MODEL_INFO", "False", *_MODEL_KEYS[args.model],
    ]
    return load_config(None, opts)


def time_loader(loader: Any, epoch: int) -> tuple[float, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Clips/s of one pass over the loader, and its batches (kept in memory for the bare step)."""
    from vov3d.engine.trainer import set_loader_epoch

    set_loader_epoch(loader, epoch)
    batches = []
    t0 = time.perf_counter()
    for clips, labels, _index, _meta in loader:
        batches.append((clips, labels))
    seconds = time.perf_counter() - t0
    return sum(len(b[1]) for b in batches) / seconds, batches


def time_bare_step(run: Any, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Clips/s of forward + loss + backward + step of the training model on batches in memory."""
    model, optimizer = run.step.train_model, run.step.optimizer
    model.train()
    loss_fn = torch.nn.functional.cross_entropy
    t0 = time.perf_counter()
    for clips, labels in batches:
        loss = loss_fn(model(clips), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return sum(len(b[1]) for b in batches) / (time.perf_counter() - t0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from vov3d.engine import trainer

    with tempfile.TemporaryDirectory(prefix="vov3d-engine-bench-") as tmp:
        data_dir = args.data
        if data_dir is None:
            from vov3d.data.synth import generate_dataset

            side = -(-max(32, args.size * 8 // 7) // 16) * 16  # a multiple of 16 that holds the jitter scales
            generate_dataset(Path(tmp) / "synth", formats="kinetics", num_train=args.videos, num_val=2, num_test=2,
                             frame_size=(side * 3 // 2, side),
                             num_frames=max(16, 5 * ((args.frames * 2) // 5) + 1), num_workers=1)
            data_dir = Path(tmp) / "synth" / "kinetics"
        cfg = build_cfg(args, data_dir, Path(tmp) / "out")
        run = trainer.setup(cfg)
        iters = run.iters_per_epoch
        trainer.train_epoch(run, 0, progress_enabled=False)  # warm-up: kernels, allocator, workers
        engine, loader, step = [], [], []
        for k in range(args.epochs):
            t0 = time.perf_counter()
            trainer.train_epoch(run, 1 + k, progress_enabled=False)
            engine.append(iters * run.train_loader.batch_size / (time.perf_counter() - t0))
            rate, batches = time_loader(run.train_loader, 1 + k)
            loader.append(rate)
            step.append(time_bare_step(run, batches))
    e, l, s = (statistics.median(v) for v in (engine, loader, step))
    print(f"settings: {args.model} {args.frames}x{args.size}², batch {args.batch_size}, backend {args.backend}, "
          f"workers {args.workers}, threads {torch.get_num_threads()}, {iters} iterations an epoch, "
          f"{args.epochs} timed epoch(s)")
    rows = [
        ("engine epoch clips/s", f"{e:.2f}"),
        ("bare step clips/s", f"{s:.2f}"),
        ("data loader clips/s", f"{l:.2f}"),
        ("engine / step", f"{e / s:.3f}  (goal >= 0.9)"),
        ("loader / step", f"{l / s:.3f}  (goal >= 1: the loader keeps up)"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
