"""The paper's temporal claim in miniature (issue 17, item 7): VoV3D-M vs X3D-M on the built-in temporal dataset.

The built-in dataset's 12 classes come in pairs that are exact time reversals of each other
(docs/synthetic_data.md), so a model must use the order of the frames to beat 50 %. Four arms, trained
from scratch with one training loop on the public API (``vov3d.data.build_dataset``/``build_loader``,
``vov3d.accel.prepare_for_training``, ``vov3d.engine`` optimizer/schedule/ensemble):

* ``vov3d_m``               VoV3D-M for ``--epochs`` epochs;
* ``x3d_m, equal epochs``   X3D-M for the same epochs;
* ``x3d_m, equal time``     X3D-M for as many steps as fit in VoV3D-M's training time (measured here);
* ``vov3d_m, frames shuffled``  the order-blind control: VoV3D-M fed clips whose frames are put in a random
  order (in training and in testing). It can find the pair of a clip, not its direction: ~50 % at best.

Then each arm is tested on the test split (``--views`` x ``--crops`` views a video, summed softmax) and one
table is printed: top-1, top-5, parameters, GFLOPs (multiply-adds per clip), steps, training seconds.

    python benchmarks/temporal.py                       # full level, 2400 training videos, 8x64², 10 epochs
    python benchmarks/temporal.py --num-train 24 --num-val 0 --num-test 12 --frame-size 32 32 --num-frames 16 \
        --frames 4 --size 32 --epochs 1 --batch-size 4  # seconds: the test's size

The dataset is written under ``--data`` (default: data/synth_temporal) if it is missing, at ``--level``
(default: full, the level the study reports). ``--json FILE`` writes the rows as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from vov3d.accel import prepare_for_training
from vov3d.accel.prepare import TRAINING_BACKENDS
from vov3d.data import ClipParams, build_dataset, build_loader, set_epoch
from vov3d.data.synth import LEVEL_NAMES, NUM_CLASSES, generate_dataset
from vov3d.engine.ensemble import ViewEnsemble
from vov3d.engine.lr_schedule import LRSchedule
from vov3d.engine.optimizer import build_optimizer, set_lr
from vov3d.models import create_model
from vov3d.models.complexity import count_gmacs, count_parameters


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data (the built-in synthetic temporal dataset)")
    data.add_argument("--data", default="data/synth_temporal", help="dataset folder (written if missing)")
    data.add_argument("--level", default="full", choices=LEVEL_NAMES, help="difficulty level (default: full)")
    data.add_argument("--num-train", type=int, default=2400)
    data.add_argument("--num-val", type=int, default=0, help="val videos (not used by the study)")
    data.add_argument("--num-test", type=int, default=240)
    data.add_argument("--frame-size", type=int, nargs=2, metavar=("W", "H"), default=None,
                      help="rendered frame size (default: the level's)")
    data.add_argument("--num-frames", type=int, default=None, help="frames a video, 5k+1 (default: the level's)")
    data.add_argument("--data-seed", type=int, default=0)
    train = parser.add_argument_group("training (the same for every arm)")
    train.add_argument("--frames", type=int, default=8, help="frames a clip")
    train.add_argument("--sampling-rate", type=int, default=None,
                       help="frames between clip frames (default: the clip spans the whole video)")
    train.add_argument("--size", type=int, default=64, help="crop size (train and test)")
    train.add_argument("--epochs", type=float, default=10.0)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=2e-3, help="AdamW peak learning rate (cosine, 5%% warm-up)")
    train.add_argument("--weight-decay", type=float, default=0.05)
    train.add_argument("--views", type=int, default=2, help="temporal views a test video")
    train.add_argument("--crops", type=int, default=3, choices=(1, 3), help="spatial crops a test view")
    train.add_argument("--workers", type=int, default=1, help="data loader workers")
    train.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    train.add_argument("--backend", default="auto", choices=TRAINING_BACKENDS,
                       help="training step (vov3d.accel.prepare_for_training; default: auto)")
    train.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), help="arms to run, in order")
    parser.add_argument("--json", default=None, help="write the rows here as JSON lines")
    return parser


@dataclass(frozen=True)
class Arm:
    model: str
    shuffle_frames: bool = False
    equal_time_with: str | None = None  # train for the training time of that arm


ARMS = {
    "vov3d_m": Arm("vov3d_m"),
    "x3d_m, equal epochs": Arm("x3d_m"),
    "x3d_m, equal time": Arm("x3d_m", equal_time_with="vov3d_m"),
    "vov3d_m, frames shuffled": Arm("vov3d_m", shuffle_frames=True),
}


def shuffle_frames(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each clip (N, C, T, H, W) with its T frames in a random order of its own."""
    order = torch.argsort(torch.rand(clips.shape[0], clips.shape[2], generator=generator), dim=1)
    index = order[:, None, :, None, None].expand_as(clips)
    return torch.gather(clips, 2, index)


def write_data(args: argparse.Namespace) -> tuple[Path, int]:
    """The built-in dataset at the chosen level (reused when already there); its folder and frames a video."""
    extra: dict[str, Any] = {}
    if args.frame_size is not None:
        extra["frame_size"] = tuple(args.frame_size)
    if args.num_frames is not None:
        extra["num_frames"] = args.num_frames
    summary = generate_dataset(args.data, "kinetics", seed=args.data_seed, num_train=args.num_train,
                               num_val=args.num_val, num_test=args.num_test, level=args.level, **extra)
    state = "reused" if summary["formats"]["kinetics"]["reused"] else f"written in {summary['seconds']:.1f} s"
    print(f"data: {summary['formats']['kinetics']['root']} ({args.level} level, {summary['frame_size'][0]}x"
          f"{summary['frame_size'][1]}, {summary['frames']['kinetics_30fps']} frames; {state})", flush=True)
    return Path(summary["formats"]["kinetics"]["root"]), summary["frames"]["kinetics_30fps"]


def clip_params(args: argparse.Namespace, video_frames: int) -> ClipParams:
    rate = args.sampling_rate or max(1, video_frames // args.frames)
    return ClipParams(num_frames=args.frames, sampling_rate=rate, target_fps=30.0,
                      train_jitter_scales=(args.size, args.size), train_crop_size=args.size,
                      test_crop_size=args.size, random_flip=False,  # a flip turns "left to right" into its pair
                      num_ensemble_views=args.views, num_spatial_crops=args.crops)


def train_arm(arm: Arm, args: argparse.Namespace, loader, steps: int) -> tuple[torch.nn.Module, float]:
    """Train a fresh model for `steps` steps; returns the pure model (trained weights) and the seconds spent."""
    torch.manual_seed(args.seed)
    model = create_model(arm.model, num_classes=NUM_CLASSES, dropout=0.0)
    runner = prepare_for_training(model, backend=args.backend)
    runner.train()
    optimizer = build_optimizer(runner, method="adamw", lr=args.lr, weight_decay=args.weight_decay)
    schedule = LRSchedule("cosine", args.lr, max_epoch=float(steps), warmup_epochs=0.05 * steps,
                          warmup_start_lr=0.1 * args.lr)
    generator = torch.Generator().manual_seed(args.seed + 1)
    done, epoch, started = 0, 0, time.perf_counter()
    while done < steps:
        set_epoch(loader, epoch)
        for clips, labels, _, _ in loader:
            if arm.shuffle_frames:
                clips = shuffle_frames(clips, generator)
            set_lr(optimizer, schedule(float(done)))
            loss = F.cross_entropy(runner(clips), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
        epoch += 1
    seconds = time.perf_counter() - started
    trained = create_model(arm.model, num_classes=NUM_CLASSES, dropout=0.0)
    trained.load_state_dict(runner.state_dict())
    return trained, seconds


@torch.no_grad()
def test_arm(model: torch.nn.Module, arm: Arm, dataset, loader, seed: int) -> dict[str, float]:
    """Top-1/top-5 (%) over the test videos, the softmax of the views summed (spec §9.5)."""
    model.eval()
    views = dataset.views_per_video
    num_videos = len(dataset) // views
    ensemble = ViewEnsemble(num_videos, NUM_CLASSES, views)
    generator = torch.Generator().manual_seed(seed + 2)
    for clips, _, index, _ in loader:
        if arm.shuffle_frames:
            clips = shuffle_frames(clips, generator)
        ensemble.add(model(clips).softmax(dim=1), index)
    labels = torch.tensor(dataset.labels[:num_videos], dtype=torch.long)
    accuracy = list(ensemble.accuracy(labels, ks=(1, 5)).values())
    return {"top1": float(accuracy[0]), "top5": float(accuracy[1])}


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    header = f"{'arm':<26} {'top-1 %':>8} {'top-5 %':>8} {'params M':>9} {'GFLOPs':>7} {'epochs':>7} {'steps':>6} {'train s':>8} {'clips/s':>8}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['arm']:<26} {r['top1']:>8.2f} {r['top5']:>8.2f} {r['params_m']:>9.2f} {r['gflops']:>7.3f} "
                     f"{r['epochs']:>7.2f} {r['steps']:>6d} {r['train_seconds']:>8.1f} {r['clips_per_s']:>8.2f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if "x3d_m, equal time" in args.arms and "vov3d_m" not in args.arms:
        print("error: the arm 'x3d_m, equal time' needs the arm 'vov3d_m' (its time budget) first", file=sys.stderr)
        return 2
    try:
        data_dir, video_frames = write_data(args)
        params = clip_params(args, video_frames)
        train_set = build_dataset("kinetics", data_dir, "train", params=params, seed=args.seed)
        test_set = build_dataset("kinetics", data_dir, "test", params=params, seed=args.seed)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    train_loader = build_loader(train_set, args.batch_size, shuffle=True, drop_last=True,
                                num_workers=args.workers, seed=args.seed)
    test_loader = build_loader(test_set, args.batch_size, shuffle=False, drop_last=False, num_workers=args.workers)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        print(f"error: {len(train_set)} training clips make no batch of {args.batch_size}", file=sys.stderr)
        return 2
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} "
          f"torch threads, load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}", flush=True)
    print(f"clips: {params.num_frames} frames every {params.sampling_rate} at {args.size}x{args.size}, batch "
          f"{args.batch_size}, {steps_per_epoch} steps an epoch, training backend {args.backend}; test: {len(test_set) // test_set.views_per_video} "
          f"videos x {test_set.views_per_video} views", flush=True)
    rows: list[dict[str, Any]] = []
    seconds_per_arm: dict[str, float] = {}
    for name in args.arms:
        arm = ARMS[name]
        if arm.equal_time_with is not None:
            reference = seconds_per_arm[arm.equal_time_with]
            own_rate = next((r["train_seconds"] / r["steps"] for r in rows if r["arm"] == "x3d_m, equal epochs"), None)
            if own_rate is None:  # measure X3D-M's step time on a few steps
                _, probe = train_arm(Arm(arm.model), args, train_loader, min(3, steps_per_epoch))
                own_rate = probe / min(3, steps_per_epoch)
            steps = max(1, math.floor(reference / own_rate))
        else:
            steps = max(1, round(args.epochs * steps_per_epoch))
        model, seconds = train_arm(arm, args, train_loader, steps)
        if not arm.shuffle_frames and arm.equal_time_with is None:
            seconds_per_arm.setdefault(arm.model, seconds)
        accuracy = test_arm(model, arm, test_set, test_loader, args.seed)
        row = {
            "arm": name, "model": arm.model, "shuffled": arm.shuffle_frames, **accuracy,
            "params_m": count_parameters(model) / 1e6, "gflops": count_gmacs(model, params.num_frames, args.size),
            "epochs": steps / steps_per_epoch, "steps": steps, "train_seconds": seconds,
            "clips_per_s": steps * args.batch_size / seconds, "level": args.level,
        }
        rows.append(row)
        print(f"{name}: top-1 {row['top1']:.2f} % after {steps} steps ({seconds:.1f} s)", flush=True)
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
