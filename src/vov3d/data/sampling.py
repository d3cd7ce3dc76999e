"""Temporal sampling: which source frames make a clip (spec §8.2, §8.3, §8.1 views).

Pure functions of the video length and the view; randomness comes in as a numpy Generator.
Indices are int64 numpy arrays, 0-based.
"""

from __future__ import annotations

import numpy as np
import torch

RANDOM = -1
"""View index meaning "draw at random" (train and, for Kinetics, val)."""


def view_of_copy(copy: int, num_spatial_crops: int) -> tuple[int, int]:
    """(temporal view, spatial view) of test copy `copy` of a video (§8.2).

    temporal = copy // crops; spatial = copy % crops, or 1 (the centre) with a single crop. The
    original uses ``copy % 1 = 0`` (top/left) for Something-Something single-crop tests (§11.12);
    we use the centre for every dataset.
    """
    if copy < 0 or num_spatial_crops < 1:
        raise ValueError(f"bad test copy {copy} / crops {num_spatial_crops}")
    temporal = copy // num_spatial_crops
    spatial = copy % num_spatial_crops if num_spatial_crops > 1 else 1
    return temporal, spatial


# ---------------------------------------------------------------------------------- Kinetics


def clip_length(num_frames: int, sampling_rate: int, target_fps: float, video_fps: float) -> float:
    """Source frames a Kinetics clip covers: SAMPLING_RATE·NUM_FRAMES/TARGET_FPS·fps (§8.2)."""
    return sampling_rate * num_frames / target_fps * video_fps


def clip_start_end(
    video_frames: int,
    clip_size: float,
    view: int,
    num_views: int,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Start and end (inclusive, fractional) source-frame positions of a clip (§8.2).

    delta = max(video_frames − clip_size, 0); view RANDOM draws start ~ U(0, delta), test view i of
    n uses start = delta·i/n; end = start + clip_size − 1.
    """
    delta = max(video_frames - clip_size, 0.0)
    if view == RANDOM:
        if rng is None:
            raise ValueError("a random view needs a numpy Generator")
        start = float(rng.uniform(0.0, delta))
    else:
        if not 0 <= view < num_views:
            raise ValueError(f"temporal view {view} out of range for {num_views} views")
        start = delta * view / num_views
    return start, start + clip_size - 1


def linspace_indices(start: float, end: float, num_frames: int, video_frames: int) -> np.ndarray:
    """NUM_FRAMES indices from start to end, clamped to [0, video_frames−1], truncated (§8.2).

    Computed with float32 ``torch.linspace`` and ``.long()`` like the original, so truncation
    matches it bit for bit.
    """
    if video_frames < 1:
        raise ValueError("a video needs at least one frame")
    index = torch.linspace(start, end, num_frames)
    index = torch.clamp(index, 0, video_frames - 1).long()
    return index.numpy()


def kinetics_indices(
    video_frames: int,
    video_fps: float,
    num_frames: int,
    sampling_rate: int,
    target_fps: float,
    view: int,
    num_views: int,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The clip's source-frame indices for a Kinetics video (§8.2), over the whole video."""
    size = clip_length(num_frames, sampling_rate, target_fps, video_fps)
    start, end = clip_start_end(video_frames, size, view, num_views, rng)
    return linspace_indices(start, end, num_frames, video_frames)


# -------------------------------------------------------------------- Something-Something


def segment_bounds(video_frames: int, num_frames: int) -> list[tuple[int, int]]:
    """(start, end) of the NUM_FRAMES segments, both inclusive (§8.3).

    seg = (L−1)/T; start_i = round(seg·i), end_i = round(seg·(i+1)), with NumPy's round half to even.
    """
    if video_frames < 1:
        raise ValueError("a video needs at least one frame")
    seg = float(video_frames - 1) / num_frames
    return [(int(np.round(seg * i)), int(np.round(seg * (i + 1)))) for i in range(num_frames)]


def segment_indices(
    video_frames: int,
    num_frames: int,
    view: int,
    num_views: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One frame from each segment (§8.3).

    * view RANDOM (train): uniform integer in [start, end], both inclusive.
    * view i of n (val, test): ``start + (end − start)·(2i+1) // (2n)``: the n views sit at the
      centres of n equal parts of every segment. With n = 1 this is the original's
      ``(start + end) // 2``. The original draws multi-view test frames at random instead
      (§11.12); ours are deterministic and the temporal views differ from each other.
    """
    bounds = segment_bounds(video_frames, num_frames)
    if view == RANDOM:
        if rng is None:
            raise ValueError("a random view needs a numpy Generator")
        return np.array([rng.integers(s, e, endpoint=True) for s, e in bounds], dtype=np.int64)
    if not 0 <= view < num_views:
        raise ValueError(f"temporal view {view} out of range for {num_views} views")
    return np.array([s + (e - s) * (2 * view + 1) // (2 * num_views) for s, e in bounds], dtype=np.int64)
