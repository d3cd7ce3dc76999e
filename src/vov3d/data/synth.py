"""The built-in synthetic temporal dataset: `vov3d data synth` (docs/synthetic_data.md).

Writes real encoded videos and annotation files in the layouts the Kinetics (spec §8.2) and
Something-Something V1/V2 (spec §8.3) readers expect. The 12 classes come in 6 pairs whose
members are exact time reversals of each other (class 2k+1 = class 2k played backwards), so
a single frame or an unordered bag of frames cannot tell the members of a pair apart.
Everything is a pure function of the seed: per-video random streams are derived from
(seed, split, index), never from worker scheduling.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from vov3d.data.synth_render import (
    BACKGROUND_KINDS,
    SHAPES,
    TICKS_PER_SECOND,
    Background,
    Colour,
    Scene,
    SceneObject,
    Timing,
)
from vov3d.utils.atomic import atomic_output_path, atomic_write

CLASS_TEMPLATES = (
    "Moving [something] from left to right",
    "Moving [something] from right to left",
    "Moving [something] down",
    "Moving [something] up",
    "[Something] growing",
    "[Something] shrinking",
    "Turning [something] clockwise",
    "Turning [something] counterclockwise",
    "[Something] appearing",
    "[Something] disappearing",
    "Moving [something] and [something] closer to each other",
    "Moving [something] and [something] away from each other",
)
"""SSv2-style templates; class id = position. Class 2k+1 is class 2k reversed in time."""

CLASS_NAMES = tuple(t.replace("[", "").replace("]", "") for t in CLASS_TEMPLATES)
"""Class names as the readers see them (brackets stripped, spec §8.3)."""

NUM_CLASSES = len(CLASS_NAMES)
FORMATS = ("kinetics", "ssv1", "ssv2")
FORMAT_CHOICES = FORMATS + ("all",)
SPLITS = ("train", "val", "test")
DEFAULT_SPLIT_SIZES = {"train": 240, "val": 60, "test": 60}
DEFAULT_FRAME_SIZE = (160, 120)
"""(width, height) of the frames."""
DEFAULT_NUM_FRAMES = 91
"""Frames at 30 fps: 3 s from the first to the last frame (180 ticks, 37 frames at 12 fps)."""

KINETICS_FPS = 30
SS_VIDEO_FPS = 12
"""SSv1 frames and SSv2 .webm videos run at 12 fps like the real datasets."""
SS_EXTRACTED_FPS = 30
"""SSv2 frame folders are 30 fps, as extracted with `ffmpeg -r 30` (spec §8.3)."""

MANIFEST_NAME = "synth_manifest.json"
"""Written last into each format folder; its presence marks a complete dataset."""
IN_PROGRESS_NAME = ".synth_in_progress.json"
"""Present while a format folder is being written; holds the settings of that run."""

SS_FRAME_LIST_HEADER = "original_vido_id video_id frame_id path labels"
_SPLIT_CODES = {"train": 1, "val": 2, "test": 3}
_GENERATOR_VERSION = 1

_COLOUR_NAMES = {
    "red": (210, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (235, 220, 50),
    "green": (50, 170, 60),
    "cyan": (40, 200, 210),
    "blue": (40, 70, 210),
    "purple": (130, 50, 180),
    "pink": (240, 130, 190),
    "brown": (120, 75, 35),
    "white": (245, 245, 245),
    "grey": (128, 128, 128),
    "black": (15, 15, 15),
}


def paired_class(class_id: int) -> int:
    """The class whose clips are the time reversals of `class_id`'s clips."""
    if not 0 <= class_id < NUM_CLASSES:
        raise ValueError(f"class id must be in [0, {NUM_CLASSES}), got {class_id}")
    return class_id ^ 1


def scene_duration(num_frames: int) -> int:
    """Ticks spanned by `num_frames` frames at 30 fps."""
    return (num_frames - 1) * (TICKS_PER_SECOND // KINETICS_FPS)


def frame_ticks(duration: int, fps: int) -> np.ndarray:
    """Ticks of the frames of a `duration`-tick clip shown at `fps` (the first frame at tick 0)."""
    if TICKS_PER_SECOND % fps:
        raise ValueError(f"fps must divide {TICKS_PER_SECOND}, got {fps}")
    return np.arange(0, duration + 1, TICKS_PER_SECOND // fps, dtype=np.int64)


def extracted_frame_sources(num_source_frames: int) -> np.ndarray:
    """For each 30 fps frame extracted from a 12 fps video, the index of its source frame.

    Emulates ffmpeg's constant-frame-rate duplication (`-r 30`): output frame k shows the
    source frame at time (k + 1/2)/30 s, so 2 source frames become 5 output frames in the
    pattern 0,0,1,1,1.
    """
    count = num_source_frames * SS_EXTRACTED_FPS // SS_VIDEO_FPS
    k = np.arange(count)
    return (2 * k + 1) * SS_VIDEO_FPS // (2 * SS_EXTRACTED_FPS)


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


# ----------------------------------------------------------------------------------------
# Scene sampling: one sampler per class pair, for its first (forward) class.


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, max(low, high)))


def _random_colour(rng: np.random.Generator, avoid: Iterable[Colour], min_distance: float = 90.0) -> Colour:
    avoid = [np.asarray(c, dtype=np.float64) for c in avoid]
    for _ in range(64):
        colour = rng.integers(0, 256, size=3)
        if all(np.linalg.norm(colour - a) >= min_distance for a in avoid):
            break
    return (int(colour[0]), int(colour[1]), int(colour[2]))


def _random_timing(rng: np.random.Generator, duration: int, min_fraction: float = 0.4) -> Timing:
    """A motion of random length (≥ min_fraction of the clip) at a random time.

    The distribution is invariant under time reversal (start ↔ duration − end).
    """
    shortest = max(1, math.ceil(min_fraction * duration))
    length = int(rng.integers(shortest, duration + 1))
    start = int(rng.integers(0, duration - length + 1))
    return Timing(start, start + length, smooth=bool(rng.random() < 0.5))


def _sample_background(rng: np.random.Generator, size: float) -> Background:
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    low = _random_colour(rng, [])
    high = _random_colour(rng, [low], min_distance=40.0)
    scale = size / 120.0
    period = {"noise": (8, 24), "stripes": (6, 24), "checker": (6, 20), "gradient": (1, 1)}[kind]
    return Background(
        kind=kind,
        colours=(low, high),
        angle=float(rng.uniform(0, math.pi)),
        period=max(2.0, _uniform(rng, *period) * scale),
        grain=float(rng.uniform(2.0, 8.0)),
        seed=int(rng.integers(2**63)),
    )


@dataclass(frozen=True)
class _Frame:
    """Frame geometry for the samplers."""

    width: int
    height: int
    duration: int

    @property
    def size(self) -> float:
        return float(min(self.width, self.height))


def _main_object(
    rng: np.random.Generator,
    background: Background,
    first: tuple[float, ...],
    last: tuple[float, ...],
    timing: Timing,
) -> SceneObject:
    """A two-tone object of random shape and colours going from state `first` to `last`."""
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    colour = _random_colour(rng, background.colours)
    second = _random_colour(rng, [*background.colours, colour], min_distance=70.0)
    return SceneObject(shape, colour, tuple(first), tuple(last), timing, second_colour=second)


def _sample_translation(rng, frame: _Frame, background: Background, vertical: bool) -> list[SceneObject]:
    """Forward classes 0 and 2: moving left → right, or top → bottom."""
    length, other = (frame.height, frame.width) if vertical else (frame.width, frame.height)
    radius = _uniform(rng, 0.08, 0.14) * frame.size
    distance = _uniform(rng, 0.35 * length, min(0.6 * length, length - 2 * radius - 2))
    along = _uniform(rng, radius + 1, length - radius - 1 - distance)
    across = _uniform(rng, radius + 1, other - radius - 1)
    drift = float(np.clip(across + rng.uniform(-0.1, 0.1) * distance, radius + 1, other - radius - 1))
    angle = float(rng.uniform(0, 2 * math.pi))
    if vertical:
        first, last = (across, along, radius, angle, 1.0), (drift, along + distance, radius, angle, 1.0)
    else:
        first, last = (along, across, radius, angle, 1.0), (along + distance, drift, radius, angle, 1.0)
    return [_main_object(rng, background, first, last, _random_timing(rng, frame.duration))]


def _random_position(rng, frame: _Frame, margin: float) -> tuple[float, float]:
    return _uniform(rng, margin, frame.width - margin), _uniform(rng, margin, frame.height - margin)


def _sample_growing(rng, frame: _Frame, background: Background) -> list[SceneObject]:
    """Forward class 4: the object's size grows 2–3×."""
    small = _uniform(rng, 0.05, 0.08) * frame.size
    large = min(small * _uniform(rng, 2.0, 3.0), 0.3 * frame.size)
    x, y = _random_position(rng, frame, 1.1 * large + 1)
    angle = float(rng.uniform(0, 2 * math.pi))
    timing = _random_timing(rng, frame.duration)
    return [_main_object(rng, background, (x, y, small, angle, 1.0), (x, y, large, angle, 1.0), timing)]


def _sample_rotation(rng, frame: _Frame, background: Background) -> list[SceneObject]:
    """Forward class 6: the object turns clockwise (on screen) by 90–170 degrees."""
    radius = _uniform(rng, 0.12, 0.2) * frame.size
    x, y = _random_position(rng, frame, 1.1 * radius + 1)
    angle = float(rng.uniform(0, 2 * math.pi))
    turn = math.radians(_uniform(rng, 90.0, 170.0))
    timing = _random_timing(rng, frame.duration)
    first, last = (x, y, radius, angle, 1.0), (x, y, radius, angle + turn, 1.0)
    return [_main_object(rng, background, first, last, timing)]


def _sample_appearing(rng, frame: _Frame, background: Background) -> list[SceneObject]:
    """Forward class 8: the object fades in from fully transparent to opaque."""
    radius = _uniform(rng, 0.08, 0.16) * frame.size
    x, y = _random_position(rng, frame, 1.1 * radius + 1)
    angle = float(rng.uniform(0, 2 * math.pi))
    timing = _random_timing(rng, frame.duration)
    return [_main_object(rng, background, (x, y, radius, angle, 0.0), (x, y, radius, angle, 1.0), timing)]


def _sample_approaching(rng, frame: _Frame, background: Background) -> list[SceneObject]:
    """Forward class 10: two objects move towards each other along a line until nearly touching."""
    radii = [_uniform(rng, 0.07, 0.11) * frame.size for _ in range(2)]
    direction = float(rng.uniform(0, math.pi))
    cos, sin = math.cos(direction), math.sin(direction)
    far = _uniform(rng, 0.5, 0.75) * frame.size
    near = sum(radii) + _uniform(rng, 1.0, 0.05 * frame.size)
    reach = max(radii) + 1
    cx = _uniform(rng, abs(cos) * far / 2 + reach, frame.width - abs(cos) * far / 2 - reach)
    cy = _uniform(rng, abs(sin) * far / 2 + reach, frame.height - abs(sin) * far / 2 - reach)
    timing = _random_timing(rng, frame.duration)
    objects = []
    for side, radius in zip((-1, 1), radii):
        angle = float(rng.uniform(0, 2 * math.pi))
        first = (cx + side * cos * far / 2, cy + side * sin * far / 2, radius, angle, 1.0)
        last = (cx + side * cos * near / 2, cy + side * sin * near / 2, radius, angle, 1.0)
        objects.append(_main_object(rng, background, first, last, timing))
    return objects


def _sample_distractor(rng, frame: _Frame, background: Background) -> SceneObject:
    """A small one-colour object on a random straight path, spinning a random amount.

    Start and end points are i.i.d. (accepted when close enough), so a path and its
    reversal are equally likely: distractors carry no arrow of time.
    """
    radius = _uniform(rng, 0.025, 0.05) * frame.size
    reach = 0.4 * frame.size
    start = _random_position(rng, frame, radius + 1)
    end = start
    for _ in range(100):
        a, b = _random_position(rng, frame, radius + 1), _random_position(rng, frame, radius + 1)
        if math.dist(a, b) <= reach:
            start, end = a, b
            break
    angle = float(rng.uniform(0, 2 * math.pi))
    spin = float(rng.uniform(-math.pi, math.pi))
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    colour = _random_colour(rng, background.colours, min_distance=60.0)
    timing = _random_timing(rng, frame.duration, min_fraction=0.3)
    first, last = (*start, radius, angle, 1.0), (*end, radius, angle + spin, 1.0)
    return SceneObject(shape, colour, first, last, timing)


_PAIR_SAMPLERS = (
    lambda rng, frame, bg: _sample_translation(rng, frame, bg, vertical=False),
    lambda rng, frame, bg: _sample_translation(rng, frame, bg, vertical=True),
    _sample_growing,
    _sample_rotation,
    _sample_appearing,
    _sample_approaching,
)
assert 2 * len(_PAIR_SAMPLERS) == NUM_CLASSES

MAX_DISTRACTORS = 3


def num_main_objects(class_id: int) -> int:
    """How many of a scene's objects (the last ones drawn) perform the class's action."""
    return 2 if class_id // 2 == 5 else 1


def sample_scene(
    class_id: int,
    rng: np.random.Generator,
    frame_size: tuple[int, int] = DEFAULT_FRAME_SIZE,
    num_frames: int = DEFAULT_NUM_FRAMES,
) -> Scene:
    """A random scene of class `class_id`: background, 0–3 distractors, then the main object(s).

    The parameters are drawn for the first class of the pair; odd classes are that draw
    reversed in time, so class 2k+1 is distributed exactly as class 2k played backwards.
    """
    paired_class(class_id)  # validates
    width, height = frame_size
    frame = _Frame(width, height, scene_duration(num_frames))
    background = _sample_background(rng, frame.size)
    distractors = [_sample_distractor(rng, frame, background) for _ in range(int(rng.integers(MAX_DISTRACTORS + 1)))]
    main = _PAIR_SAMPLERS[class_id // 2](rng, frame, background)
    scene = Scene(width, height, frame.duration, background, tuple(distractors + main))
    return scene.time_reversed() if class_id % 2 else scene


def describe_object(obj: SceneObject) -> str:
    """A short name such as "red triangle" (the SSv2 placeholder)."""
    colour = np.asarray(obj.colour, dtype=np.float64)
    name = min(_COLOUR_NAMES, key=lambda n: float(np.linalg.norm(colour - np.asarray(_COLOUR_NAMES[n]))))
    return f"{name} {obj.shape}"


# ----------------------------------------------------------------------------------------
# Encoding and writing one video.


def rgb_to_yuv420p(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB to PyAV's yuv420p layout (T, 3H/2, W): BT.601, limited range.

    Integer arithmetic, so the encoder input is reproducible bit for bit; chroma is the
    mean of each 2×2 block. (libx264 fed frames converted by PyAV itself was seen to give
    different bytes from run to run.)
    """
    count, height, width = frames.shape[:3]
    r, g, b = (frames[..., c].astype(np.uint16) for c in range(3))
    y = r * np.uint16(66)  # at most 220·255 + 128: fits uint16
    y += g * np.uint16(129)
    y += b * np.uint16(25)
    y += np.uint16(128)
    y >>= 8
    y += np.uint16(16)
    r, g, b = (  # 4× the means of the 2×2 blocks
        (c[:, 0::2, 0::2] + c[:, 1::2, 0::2] + c[:, 0::2, 1::2] + c[:, 1::2, 1::2]).astype(np.int32) for c in (r, g, b)
    )
    u = ((-38 * r - 74 * g + 112 * b + 512) >> 10) + 128
    v = ((112 * r - 94 * g - 18 * b + 512) >> 10) + 128
    quarter = (count, height // 4, width)
    planes = [y, u.reshape(quarter), v.reshape(quarter)]
    return np.concatenate(planes, axis=1).clip(0, 255).astype(np.uint8)


def _encode(path: Path, frames: np.ndarray, fps: int, codec: str, options: dict[str, str]) -> None:
    """Encode RGB frames as yuv420p with one encoder thread, reproducibly byte for byte."""
    import av

    height, width = frames.shape[1:3]
    with atomic_output_path(path) as tmp, av.open(
        str(tmp), "w", format=path.suffix[1:], options={"fflags": "+bitexact"}
    ) as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.time_base = Fraction(1, fps)
        for i, yuv in enumerate(rgb_to_yuv420p(frames)):
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _x264_options() -> dict[str, str]:
    """libx264 settings. On CPUs with AVX-512 its assembly is capped at AVX2: with the
    AVX-512 code, about 1 encode in 200 came out different on a loaded machine, while
    capped (or with no assembly at all) thousands of encodes were identical. x264's
    assembly is bit-exact, so the cap changes speed only, not the bytes."""
    options = {"preset": "veryfast", "crf": "18", "g": str(KINETICS_FPS)}
    try:
        cpu_flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        cpu_flags = []
    if "avx512f" in cpu_flags:  # every AVX-512 CPU has all of x264's "AVX2" set
        options["x264-params"] = "asm=AVX2"
    return options


_H264_OPTIONS = _x264_options()
_VP9_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0", "g": str(SS_VIDEO_FPS)}


def _write_jpegs(folder: Path, vid: str, jpegs: list[bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, data in enumerate(jpegs, start=1):
        (folder / f"{vid}_{number:06d}.jpg").write_bytes(data)


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


def _write_video(job: _VideoJob) -> list[str]:
    """Render one video and write it in every requested format; returns the SSv2 placeholders."""
    import simplejpeg

    scene = sample_scene(job.class_id, video_rng(job.seed, job.split, job.index), job.frame_size, job.num_frames)
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
        _encode(out, frames_at(ticks_30), KINETICS_FPS, "libx264", _H264_OPTIONS)
    if "ssv1" in job.formats or "ssv2" in job.formats:
        frames_12 = frames_at(ticks_12)
        jpegs = [simplejpeg.encode_jpeg(np.ascontiguousarray(f), quality=90, colorspace="RGB") for f in frames_12]
        if "ssv1" in job.formats:
            _write_jpegs(root / "ssv1" / "frames" / vid, vid, jpegs)
        if "ssv2" in job.formats:
            out = root / "ssv2" / "videos" / f"{vid}.webm"
            out.parent.mkdir(parents=True, exist_ok=True)
            _encode(out, frames_12, SS_VIDEO_FPS, "libvpx-vp9", _VP9_OPTIONS)
            sources = extracted_frame_sources(len(frames_12))
            _write_jpegs(root / "ssv2" / "frames" / vid, vid, [jpegs[j] for j in sources])
    return [describe_object(o) for o in scene.objects[-num_main_objects(job.class_id) :]]


# ----------------------------------------------------------------------------------------
# Annotation files (spec §8.2, §8.3).


def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically, so a reader never sees half a file."""
    with atomic_write(path, "w") as f:
        f.write(text)


@dataclass(frozen=True)
class _Video:
    split: str
    index: int
    class_id: int
    placeholders: tuple[str, ...]

    @property
    def id(self) -> str:
        return video_id(self.split, self.index)


def _write_kinetics_annotations(root: Path, videos: list[_Video]) -> list[Path]:
    written = []
    for split in SPLITS:
        path = root / f"{split}.csv"
        _write_text(path, "".join(f"{split}/{v.id}.mp4 {v.class_id}\n" for v in videos if v.split == split))
        written.append(path)
    path = root / "classes.txt"
    _write_text(path, "".join(f"{name}\n" for name in CLASS_NAMES))
    return written + [path]


def _ss_split(split: str) -> str:
    """SS has train and validation only; the val and test videos both go to validation."""
    return "train" if split == "train" else "validation"


def _write_frame_lists(root: Path, videos: list[_Video], frames_per_video: int) -> list[Path]:
    written = []
    for ss_split, name in (("train", "train.csv"), ("validation", "val.csv")):
        lines = [SS_FRAME_LIST_HEADER + "\n"]
        chosen = [v for v in videos if _ss_split(v.split) == ss_split]
        for number, v in enumerate(chosen):
            for frame in range(frames_per_video):
                path = f"frames/{v.id}/{v.id}_{frame + 1:06d}.jpg"
                lines.append(f"{v.id} {number} {frame} {path} {v.class_id}\n")
        _write_text(root / name, "".join(lines))
        written.append(root / name)
    return written


def _write_ssv1_annotations(root: Path, videos: list[_Video], frames_per_video: int) -> list[Path]:
    written = _write_frame_lists(root, videos, frames_per_video)
    for ss_split in ("train", "validation"):
        path = root / f"something-something-v1-{ss_split}.csv"
        chosen = [v for v in videos if _ss_split(v.split) == ss_split]
        _write_text(path, "".join(f"{v.id};{CLASS_NAMES[v.class_id]}\n" for v in chosen))
        written.append(path)
    path = root / "something-something-v1-labels.csv"
    _write_text(path, "".join(f"{name}\n" for name in CLASS_NAMES))
    return written + [path]


def _filled_template(template: str, placeholders: Iterable[str]) -> str:
    text = template
    for name in placeholders:
        start = text.index("[")
        text = text[:start] + name + text[text.index("]", start) + 1 :]
    return text[0].upper() + text[1:]


def _write_ssv2_annotations(root: Path, videos: list[_Video], frames_per_video: int) -> list[Path]:
    written = _write_frame_lists(root, videos, frames_per_video)
    for ss_split in ("train", "validation"):
        path = root / f"something-something-v2-{ss_split}.json"
        entries = [
            {
                "id": v.id,
                "label": _filled_template(CLASS_TEMPLATES[v.class_id], v.placeholders).lower(),
                "template": CLASS_TEMPLATES[v.class_id],
                "placeholders": list(v.placeholders),
            }
            for v in videos
            if _ss_split(v.split) == ss_split
        ]
        _write_text(path, json.dumps(entries, indent=1) + "\n")
        written.append(path)
    path = root / "something-something-v2-labels.json"
    _write_text(path, json.dumps({name: str(i) for i, name in enumerate(CLASS_NAMES)}, indent=1) + "\n")
    return written + [path]


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
    _write_text(folder / IN_PROGRESS_NAME, json.dumps(settings, sort_keys=True))
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
    frame_size: tuple[int, int] = DEFAULT_FRAME_SIZE,
    num_frames: int = DEFAULT_NUM_FRAMES,
    num_workers: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the synthetic temporal dataset under `out_dir/<format>` (docs/synthetic_data.md).

    `formats` is "kinetics", "ssv1", "ssv2" or "all". Split sizes default to 240/60/60.
    SS formats have train and validation only: their validation set holds the val videos
    followed by the test videos. `frame_size` is (width, height), both even; `num_frames`
    counts 30 fps frames. `num_workers` processes render and encode (default: available
    CPUs, at most 8); the output does not depend on it. Returns a JSON-serialisable summary.
    """
    started = time.perf_counter()
    if formats not in FORMAT_CHOICES:
        raise ValueError(f"unknown format {formats!r}; accepted: {', '.join(FORMAT_CHOICES)}")
    chosen = FORMATS if formats == "all" else (formats,)
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
    to_write = []
    for fmt in chosen:
        if not _prepare_folder(root / fmt, {**settings, "format": fmt}, overwrite):
            to_write.append(fmt)

    labels = {split: split_labels(seed, split, sizes[split]) for split in SPLITS}
    jobs = [
        _VideoJob(str(root), tuple(to_write), seed, split, i, int(labels[split][i]), (width, height), num_frames)
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
    videos = [_Video(j.split, j.index, j.class_id, tuple(p)) for j, p in zip(jobs, placeholders)]

    duration = scene_duration(num_frames)
    frames_12 = len(frame_ticks(duration, SS_VIDEO_FPS))
    frames_ssv2 = len(extracted_frame_sources(frames_12))
    written: dict[str, list[str]] = {}
    for fmt in chosen:
        folder = root / fmt
        if fmt in to_write:  # annotations last, then the manifest: the run is complete
            if fmt == "kinetics":
                files = _write_kinetics_annotations(folder, videos)
            elif fmt == "ssv1":
                files = _write_ssv1_annotations(folder, videos, frames_12)
            else:
                files = _write_ssv2_annotations(folder, videos, frames_ssv2)
            manifest = {"settings": {**settings, "format": fmt}, "files": [p.name for p in files]}
            _write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
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
