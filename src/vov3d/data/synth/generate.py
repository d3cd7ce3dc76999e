"""``generate_dataset``: the synthetic dataset written in the requested formats (docs/synthetic_data.md).

For every video: a scene of its class (``scenes``), rendered at the frame times the formats need
(``render``, ``frame_times``) and encoded (``encoding``); then the annotation files
(``annotations``) and last the manifest that marks a complete dataset. Everything is a pure
function of the seed: per-video random streams are derived from (seed, split, index), never
from worker scheduling, so any number of worker processes writes the same bytes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vov3d.data.synth.annotations import (
    SyntheticVideo,
    write_kinetics_annotations,
    write_ssv1_annotations,
    write_ssv2_annotations,
    write_text,
)
from vov3d.data.synth.encoding import H264_OPTIONS, VP9_OPTIONS, encode_jpegs, encode_video, write_jpegs
from vov3d.data.synth.frame_times import (
    KINETICS_FPS,
    SS_VIDEO_FPS,
    extracted_frame_sources,
    frame_ticks,
    scene_duration,
)
from vov3d.data.synth.levels import DEFAULT_LEVEL, get_level
from vov3d.data.synth.scenes import (
    CLASS_NAMES,
    NUM_CLASSES,
    describe_object,
    num_main_objects,
    sample_scene,
)

FORMATS = ("kinetics", "ssv1", "ssv2")
FORMAT_CHOICES = FORMATS + ("all",)
SPLITS = ("train", "val", "test")
DEFAULT_SPLIT_SIZES = {"train": 240, "val": 60, "test": 60}

MANIFEST_NAME = "synth_manifest.json"
"""Written last into each format folder; its presence marks a complete dataset."""
IN_PROGRESS_NAME = ".synth_in_progress.json"
"""Present while a format folder is being written; holds the settings of that run."""
_SPLIT_CODES = {"train": 1, "val": 2, "test": 3}
_GENERATOR_VERSION = 1


def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of video `index` of `split`; independent of anything else."""
    return np.random.default_rng([seed, _SPLIT_CODES[split], 1, index])


def split_labels(seed: int, split: str, count: int) -> np.ndarray:
    """Class ids of the videos of a split: balanced (counts differ by at most 1), shuffled."""
    rng = np.random.default_rng([seed, _SPLIT_CODES[split], 0])
    labels = np.arange(count) % NUM_CLASSES
    # Which classes get the remainder videos is random too.
    remainder_classes = rng.permutation(NUM_CLASSES)
    labels[count - count % NUM_CLASSES :] = remainder_classes[: count % NUM_CLASSES]
    return rng.permutation(labels)


def video_id(split: str, index: int) -> str:
    """Numeric video id as in Something-Something, unique across splits: e.g. train 5 -> "1000005"."""
    if not 0 <= index < 1_000_000:
        raise ValueError(f"at most 1,000,000 videos per split, got index {index}")
    return f"{_SPLIT_CODES[split]}{index:06d}"


@dataclass(frozen=True)
class _VideoJob:
    root: str
    formats: tuple[str, ...]
    seed: int
    split: str
    index: int
    class_id: int
    frame_size: tuple[int, int]
    num_frames: int
    level: str


def _write_video(job: _VideoJob) -> list[str]:
    """Render one video and write it in every requested format; returns the SSv2 placeholders."""
    rng = video_rng(job.seed, job.split, job.index)
    scene = sample_scene(job.class_id, rng, job.frame_size, job.num_frames, job.level)
    vid = video_id(job.split, job.index)
    root = Path(job.root)
    ticks_30 = frame_ticks(scene.duration, KINETICS_FPS)
    ticks_12 = frame_ticks(scene.duration, SS_VIDEO_FPS)
    wanted = set()
    if "kinetics" in job.formats:
        wanted.update(ticks_30.tolist())
    if "ssv1" in job.formats or "ssv2" in job.formats:
        wanted.update(ticks_12.tolist())
    ticks = np.array(sorted(wanted), dtype=np.int64)
    rendered = scene.render(ticks)
    position = {int(t): i for i, t in enumerate(ticks)}

    def frames_at(at: np.ndarray) -> np.ndarray:
        return rendered[[position[int(t)] for t in at]]

    if "kinetics" in job.formats:
        out = root / "kinetics" / job.split / f"{vid}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        encode_video(out, frames_at(ticks_30), KINETICS_FPS, "libx264", H264_OPTIONS)
    if "ssv1" in job.formats or "ssv2" in job.formats:
        frames_12 = frames_at(ticks_12)
        jpegs = encode_jpegs(frames_12)
        if "ssv1" in job.formats:
            write_jpegs(root / "ssv1" / "frames" / vid, vid, jpegs)
        if "ssv2" in job.formats:
            out = root / "ssv2" / "videos" / f"{vid}.webm"
            out.parent.mkdir(parents=True, exist_ok=True)
            encode_video(out, frames_12, SS_VIDEO_FPS, "libvpx-vp9", VP9_OPTIONS)
            sources = extracted_frame_sources(len(frames_12))
            write_jpegs(root / "ssv2" / "frames" / vid, vid, [jpegs[j] for j in sources])
    return [describe_object(o) for o in scene.objects[-num_main_objects(job.class_id) :]]


# ----------------------------------------------------------------------------------------
# Output folders: reuse, resume and overwrite rules.


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _prepare_folder(folder: Path, settings: dict[str, Any], overwrite: bool) -> bool:
    """Make `folder` ready for writing; True if it already holds this exact dataset.

    * missing or empty: written;
    * complete dataset with the same settings: reused as is (unless `overwrite`);
    * interrupted run with the same settings: written again in place;
    * a synthetic dataset with other settings: refused, or deleted and rewritten with `overwrite`;
    * anything else: refused, even with `overwrite` (we never delete what we did not write).
    """
    manifest = _read_json(folder / MANIFEST_NAME) if (folder / MANIFEST_NAME).is_file() else None
    in_progress = _read_json(folder / IN_PROGRESS_NAME) if (folder / IN_PROGRESS_NAME).is_file() else None
    if folder.is_dir() and any(folder.iterdir()):
        ours = (folder / MANIFEST_NAME).is_file() or (folder / IN_PROGRESS_NAME).is_file()
        if not ours:
            raise ValueError(
                f"{folder} is not empty and holds no synthetic dataset; remove it or choose another --out"
            )
        if not overwrite:
            if manifest is not None and manifest.get("settings") == settings:
                return True
            if manifest is None and in_progress == settings:
                pass  # resume an interrupted run: everything is rewritten deterministically
            else:
                old = (manifest or {}).get("settings", in_progress)
                raise ValueError(
                    f"{folder} holds a synthetic dataset with other settings ({old}); "
                    f"requested {settings}; remove it or choose another --out"
                )
        else:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_NAME).unlink(missing_ok=True)
    write_text(folder / IN_PROGRESS_NAME, json.dumps(settings, sort_keys=True))
    return False


def _default_workers() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def _worker_context() -> multiprocessing.context.BaseContext:
    """Fresh worker processes, whatever threads the caller runs: a fork server that has
    imported this module once (importing `vov3d` costs seconds), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def _check_count(name: str, value: int | None, default: int) -> int:
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def generate_dataset(
    out_dir: str | os.PathLike[str],
    formats: str = "kinetics",
    seed: int = 0,
    num_train: int | None = None,
    num_val: int | None = None,
    num_test: int | None = None,
    *,
    level: str = DEFAULT_LEVEL,
    frame_size: tuple[int, int] | None = None,
    num_frames: int | None = None,
    num_workers: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the synthetic temporal dataset under `out_dir/<format>` (docs/synthetic_data.md).

    `formats` is "kinetics", "ssv1", "ssv2" or "all". Split sizes default to 240/60/60.
    SS formats have train and validation only: their validation set holds the val videos
    followed by the test videos. `level` is "full" (default), "medium" or "easy"
    (``levels.LEVELS``); `frame_size` is (width, height), both even, and `num_frames` counts
    30 fps frames; both default to the level's. `num_workers` processes render and encode (default: available
    CPUs, at most 8); the output does not depend on it. Returns a JSON-serialisable summary.
    """
    started = time.perf_counter()
    if formats not in FORMAT_CHOICES:
        raise ValueError(f"unknown format {formats!r}; accepted: {', '.join(FORMAT_CHOICES)}")
    chosen = FORMATS if formats == "all" else (formats,)
    chosen_level = get_level(level)
    frame_size = chosen_level.frame_size if frame_size is None else frame_size
    num_frames = chosen_level.num_frames if num_frames is None else num_frames
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    sizes = {
        "train": _check_count("num_train", num_train, DEFAULT_SPLIT_SIZES["train"]),
        "val": _check_count("num_val", num_val, DEFAULT_SPLIT_SIZES["val"]),
        "test": _check_count("num_test", num_test, DEFAULT_SPLIT_SIZES["test"]),
    }
    if sum(sizes.values()) == 0:
        raise ValueError("the dataset would be empty: all split sizes are 0")
    width, height = (int(v) for v in frame_size)
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"frame_size must be even and at least 16×16 (yuv420p), got {frame_size}")
    if num_frames < 6 or (num_frames - 1) % 5:
        # A clip of 5k+1 frames at 30 fps lasts a multiple of 1/6 s (10 ticks), so that its
        # 12 fps frames are also placed symmetrically in time and reverse exactly.
        raise ValueError(f"num_frames must be 5k+1 and at least 6 (e.g. 16, 31, 91), got {num_frames}")
    workers = _default_workers() if num_workers is None else int(num_workers)
    if workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {num_workers}")

    root = Path(out_dir)
    settings = {
        "generator": "vov3d.data.synth",
        "version": _GENERATOR_VERSION,
        "seed": seed,
        "split_sizes": sizes,
        "frame_size": [width, height],
        "num_frames": num_frames,
    }
    if level != DEFAULT_LEVEL:  # the full level's settings (and manifests) stay as they always were
        settings["level"] = level
    to_write = []
    for fmt in chosen:
        if not _prepare_folder(root / fmt, {**settings, "format": fmt}, overwrite):
            to_write.append(fmt)

    labels = {split: split_labels(seed, split, sizes[split]) for split in SPLITS}
    jobs = [
        _VideoJob(str(root), tuple(to_write), seed, split, i, int(labels[split][i]), (width, height), num_frames, level)
        for split in SPLITS
        for i in range(sizes[split])
    ]
    if to_write:
        if workers == 1 or len(jobs) < 2:
            placeholders = [_write_video(job) for job in jobs]
        else:
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=_worker_context()) as pool:
                placeholders = list(pool.map(_write_video, jobs, chunksize=4))
    else:  # everything reused: the placeholders are already in the annotation files
        placeholders = [[] for _ in jobs]
    videos = [
        SyntheticVideo(j.split, video_id(j.split, j.index), j.class_id, tuple(p)) for j, p in zip(jobs, placeholders)
    ]

    duration = scene_duration(num_frames)
    frames_12 = len(frame_ticks(duration, SS_VIDEO_FPS))
    frames_ssv2 = len(extracted_frame_sources(frames_12))
    written: dict[str, list[str]] = {}
    for fmt in chosen:
        folder = root / fmt
        if fmt in to_write:  # annotations last, then the manifest: the run is complete
            if fmt == "kinetics":
                files = write_kinetics_annotations(folder, videos)
            elif fmt == "ssv1":
                files = write_ssv1_annotations(folder, videos, frames_12)
            else:
                files = write_ssv2_annotations(folder, videos, frames_ssv2)
            manifest = {"settings": {**settings, "format": fmt}, "files": [p.name for p in files]}
            write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
            (folder / IN_PROGRESS_NAME).unlink()
        names = (_read_json(folder / MANIFEST_NAME) or {}).get("files", [])
        written[fmt] = [str(folder / name) for name in names] + [str(folder / MANIFEST_NAME)]

    counts = {
        split: {name: int(np.sum(labels[split] == c)) for c, name in enumerate(CLASS_NAMES)} for split in SPLITS
    }
    return {
        "out_dir": str(root),
        "formats": {
            fmt: {
                "root": str(root / fmt),
                "reused": fmt not in to_write,
                "annotation_files": written[fmt],
                "splits": (
                    dict(sizes)
                    if fmt == "kinetics"
                    else {"train": sizes["train"], "validation": sizes["val"] + sizes["test"]}
                ),
            }
            for fmt in chosen
        },
        "classes": list(CLASS_NAMES),
        "videos_per_split": dict(sizes),
        "videos_per_split_and_class": counts,
        "seed": seed,
        "level": level,
        "frame_size": [width, height],
        "frames": {
            "kinetics_30fps": num_frames,
            "ssv1_12fps": frames_12,
            "ssv2_webm_12fps": frames_12,
            "ssv2_extracted_30fps": frames_ssv2,
        },
        "num_workers": workers,
        "seconds": round(time.perf_counter() - started, 3),
    }
