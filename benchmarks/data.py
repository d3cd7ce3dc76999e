"""Data-loading benchmark (a script, not a test): clips/s of the training pipeline.

    .venv/bin/python benchmarks/data.py [--clips 64] [--rounds 2] [--workers 2] [--num-videos 8]

Measures the Kinetics training pipeline (16 frames × 5, short-side jitter 256-320, 224² crop,
flip, normalise; spec §8.2/§8.4) through `build_loader` with 2 workers:
  1. on the built-in synthetic dataset (`vov3d.data.synth.generate_dataset(..., "kinetics")`);
  2. on 10 s 320p (568×320, 30 fps) h264 clips written here with PyAV (libx264 defaults);
each against a naive reader written here (a ClipDataset whose load_frames decodes and converts
every frame of the video, then samples). Uses only vov3d's public API.
Also times the JPEG decoders (simplejpeg vs Pillow) on SSv2-sized frames. Prints the memory
allocator in use: glibc malloc unless LD_PRELOAD loads jemalloc or tcmalloc (with
--keep-freed-memory, glibc set to keep freed memory as vov3d.accel.keep_freed_memory does).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from vov3d.accel import describe_allocator, keep_freed_memory
from vov3d.data import KINETICS_PARAMS, ClipDataset, Kinetics, VideoReader, build_loader, sampling, set_epoch


class NaiveKinetics(ClipDataset):
    """The videos of a Kinetics dataset read the naive way: every frame decoded and converted to
    RGB, then the clip's frames taken (the same indices as Kinetics, spec §8.2)."""

    def __init__(self, kinetics: Kinetics) -> None:
        super().__init__(kinetics.videos, kinetics.split, kinetics.params, seed=kinetics.seed)

    def load_frames(self, video, temporal_view, rng):
        p = self.params
        with VideoReader(video.path) as reader:
            frames = reader.read_all()
            indices = sampling.kinetics_indices(
                len(frames), reader.fps, p.num_frames, p.sampling_rate, p.target_fps,
                temporal_view, self.num_temporal_views, rng,
            )
        return frames[indices]


def clips_per_second(dataset, clips: int, workers: int, batch_size: int) -> tuple[float, int]:
    """Clips/s of the loader over `clips` clips after one warm-up batch; also returns bad samples."""
    loader = build_loader(dataset, batch_size, shuffle=True, drop_last=True, num_workers=workers, seed=0,
                          persistent_workers=workers > 0)
    if len(loader) == 0:
        raise SystemExit(f"{len(dataset)} clips make no full batch of {batch_size}")
    done, failures, epoch, start = 0, 0, 0, None
    while done < clips:
        set_epoch(loader, epoch)
        for clip, _, _, meta in loader:
            failures += int(meta["failures"].sum())
            if start is None:  # warm-up: worker start and the first batch are not counted
                start = time.perf_counter()
                continue
            done += clip.shape[0]
            if done >= clips:
                break
        epoch += 1
    return done / (time.perf_counter() - start), failures


def write_320p_clips(folder: Path, count: int, seconds: float, seed: int = 0) -> list[Path]:
    """h264 clips of textured, moving content (flat colours would decode unrealistically fast)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height, fps = 568, 320, 30
    paths = []
    for v in range(count):
        path = folder / f"clip{v}.mp4"
        base = rng.integers(0, 256, (height // 8 + 16, width // 8 + 24, 3)).astype(np.float32)
        base = torch.nn.functional.interpolate(torch.from_numpy(base).permute(2, 0, 1)[None], scale_factor=8,
                                               mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for i in range(int(seconds * fps)):
                dx, dy = int(i * 0.6), int(i * 0.4)  # a slow camera pan (no cuts)
                img = base[dy : dy + height, dx : dx + width] + rng.normal(0, 6, (height, width, 3))
                x0 = int((width - 80) * (0.5 + 0.45 * np.sin(i / 20)))
                img[100:180, x0 : x0 + 80] = (255, 40 + (i % 50), 40)  # a moving object
                frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        paths.append(path)
    return paths


def jpeg_decoders(num: int = 200) -> None:
    """ms/frame of simplejpeg and Pillow on 427×240 frames (SSv2's size), quality 95."""
    import simplejpeg
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (38, 62, 3)).astype(np.float32)
    img = torch.nn.functional.interpolate(torch.from_numpy(base).permute(2, 0, 1)[None], size=(240, 427),
                                          mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()
    img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    data = simplejpeg.encode_jpeg(img, quality=95)

    def pillow(d):
        with Image.open(io.BytesIO(d)) as im:
            return np.asarray(im.convert("RGB"))

    def simple(d):
        return simplejpeg.decode_jpeg(d, colorspace="RGB", strict=True)

    assert np.array_equal(pillow(data), simple(data))
    for name, fn in [("simplejpeg", simple), ("Pillow", pillow)]:
        for _ in range(20):
            fn(data)
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(num):
                fn(data)
            best = min(best, (time.perf_counter() - t) / num)
        print(f"  {name:<10} {best * 1e3:.3f} ms/frame ({1 / best:.0f} frames/s)")


def compare(title: str, root: Path, args) -> None:
    """Alternate the two pipelines for --rounds rounds (load drifts on a shared machine); best of each."""
    params = KINETICS_PARAMS
    ours = Kinetics(root, "train", params)
    naive = NaiveKinetics(ours)
    fast, slow, bad = [], [], 0
    for _ in range(args.rounds):
        for dataset, results in ((ours, fast), (naive, slow)):
            rate, failures = clips_per_second(dataset, args.clips, args.workers, args.batch_size)
            results.append(rate)
            bad += failures
    print(f"{title}: {len(ours)} clips an epoch; clips/s per round, best")
    print(f"  seek + decode the clip only : {' '.join(f'{r:6.2f}' for r in fast)}   best {max(fast):6.2f}")
    print(f"  naive full decode           : {' '.join(f'{r:6.2f}' for r in slow)}   best {max(slow):6.2f}")
    print(f"  ratio (best / best)         : {max(fast) / max(slow):6.2f}x")
    if bad:
        print(f"  bad samples replaced: {bad}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64, help="clips timed per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per pipeline")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-videos", type=int, default=8, help="10 s 320p clips to write")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--skip-synth", action="store_true", help="skip the built-in dataset")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="call vov3d.accel.keep_freed_memory() first (glibc: no mmap, no trim)")
    args = parser.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()

    torch.set_num_threads(1)  # each worker is one process; the main process only collates
    print(f"allocator: {describe_allocator()} (workers are forked and inherit it)")
    print("load average before the run: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"python {platform.python_version()}, torch {torch.__version__}, PyAV {av.__version__} "
          f"(libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}), "
          f"{os.cpu_count()} CPUs, {args.workers} workers, batch {args.batch_size}, {args.clips} clips timed a round")
    print(f"clip: {KINETICS_PARAMS.num_frames}x{KINETICS_PARAMS.sampling_rate} frames, "
          f"jitter {KINETICS_PARAMS.train_jitter_scales}, crop {KINETICS_PARAMS.train_crop_size}^2")
    print("JPEG decode, 427x240 quality 95:")
    jpeg_decoders()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_synth:
            from vov3d.data.synth import generate_dataset

            t = time.perf_counter()
            generate_dataset(tmp / "synth", formats="kinetics", seed=0)
            print(f"built-in dataset written in {time.perf_counter() - t:.1f} s")
            compare("built-in synthetic dataset (kinetics format)", tmp / "synth" / "kinetics", args)
        t = time.perf_counter()
        clips = write_320p_clips(tmp / "h264", args.num_videos, args.seconds)
        # each video listed 4 times so that an epoch holds several batches
        (tmp / "h264" / "train.csv").write_text("".join(f"{p.name} 0\n" for p in clips * 4))
        with av.open(str(clips[0])) as c:
            s = c.streams.video[0]
            keyframes = sum(p.is_keyframe for p in c.demux(s))
            print(f"{len(clips)} h264 clips {s.width}x{s.height} {s.frames} frames, {keyframes} key frames each, "
                  f"written in {time.perf_counter() - t:.1f} s")
        compare(f"{args.seconds:g} s 320p h264 clips", tmp / "h264", args)
    print("load average after the run: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
