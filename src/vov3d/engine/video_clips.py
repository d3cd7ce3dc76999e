"""Any video file -> the model's test views: temporal positions x spatial crops, as the test split samples them.

Spec §8.1-§8.4. Kinetics-style sampling (``sampling="kinetics"``): ``num_views`` clips of
``num_frames`` frames ``sampling_rate`` apart at ``target_fps``, at uniform positions over the video;
a video shorter than a clip repeats its last frame (indices are clamped). Something-Something-style
(``"segments"``): one frame from each of ``num_frames`` equal segments of the whole video. Each clip's
short side is scaled to the crop size and 1 (centre) or 3 crops are taken; frames are normalised with
the dataset's mean and std (and reversed to BGR for the SS weights, as the original trains them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vov3d.data import MediaError, VideoReader
from vov3d.data.sampling import kinetics_indices, segment_indices
from vov3d.data.transforms import normalize, scale_short_side, uniform_crop

logger = logging.getLogger(__name__)

SAMPLINGS = ("kinetics", "segments")


@dataclass(frozen=True)
class ViewSpec:
    """How the views of one video are taken (the test split's DATA.* and TEST.* values)."""

    num_frames: int = 16
    sampling_rate: int = 5
    target_fps: float = 30.0
    crop_size: int = 224
    num_views: int = 1  # temporal positions (TEST.NUM_ENSEMBLE_VIEWS)
    num_crops: int = 1  # 1 (centre) or 3 (TEST.NUM_SPATIAL_CROPS)
    sampling: str = "kinetics"
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    reverse_channels: bool = False

    def __post_init__(self) -> None:
        for name in ("num_frames", "sampling_rate", "crop_size", "num_views"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 or 3, got {self.num_crops!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if not self.target_fps > 0:
            raise ValueError(f"target_fps must be > 0, got {self.target_fps!r}")

    @property
    def views_per_video(self) -> int:
        return self.num_views * self.num_crops


@dataclass
class VideoViews:
    """The views of one video. ``frames``: float (V, 3, T, S, S) RGB in [0, 1], temporal-major order
    (view v is temporal position v // crops, crop v % crops); ``indices``: the source frames of each
    temporal position; ``fps``, ``frame_count``, ``height``, ``width``: of the source video."""

    path: str
    frames: torch.Tensor
    indices: list[np.ndarray]
    fps: float
    frame_count: int
    height: int
    width: int

    def model_input(self, spec: ViewSpec) -> torch.Tensor:
        """The views normalised (and channel-reversed if the spec says so): (V, 3, T, S, S) float32."""
        clips = torch.stack([normalize(clip, spec.mean, spec.std) for clip in self.frames])
        return clips.flip(1) if spec.reverse_channels else clips


def view_indices(frame_count: int, fps: float, spec: ViewSpec, view: int) -> np.ndarray:
    """Source-frame indices of temporal view ``view`` of a video of ``frame_count`` frames."""
    if spec.sampling == "segments":
        return segment_indices(frame_count, spec.num_frames, view, spec.num_views)
    return kinetics_indices(frame_count, fps, spec.num_frames, spec.sampling_rate, spec.target_fps, view, spec.num_views)


def _crops(frames: np.ndarray, spec: ViewSpec) -> list[torch.Tensor]:
    clip = torch.from_numpy(frames).permute(3, 0, 1, 2).float().div_(255.0)  # (3, T, H, W)
    clip = scale_short_side(clip, spec.crop_size)
    spatial = (1,) if spec.num_crops == 1 else (0, 1, 2)
    return [uniform_crop(clip, spec.crop_size, s).contiguous() for s in spatial]


def read_views(path: str | Path, spec: ViewSpec, threads: int = 1) -> VideoViews:
    """Decode the views of ``path``. Raises MediaError (naming the file) for a video it cannot read."""
    path = str(path)
    if Path(path).is_dir():
        raise MediaError(path, "is a folder, not a video file")
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    with VideoReader(path, threads=threads) as video:
        fps, count = video.fps, video.num_frames
        everything = None
        if count is None:  # neither a frame count nor a duration in the header: decode it all
            everything = video.read_all()
            count = len(everything)
    if count < 1:
        raise MediaError(path, "the video has no frames")
    indices = [view_indices(count, fps, spec, v) for v in range(spec.num_views)]
    crops: list[torch.Tensor] = []
    decoded: dict[bytes, list[torch.Tensor]] = {}
    height = width = 0
    for idx in indices:
        key = idx.tobytes()
        if key not in decoded:  # a short video gives identical temporal views: decode them once
            if everything is None:
                try:
                    with VideoReader(path, threads=threads) as video:  # a fresh reader seeks from the start
                        frames = video.read_indices(idx)
                except MediaError as err:
                    # the header promised more frames than there are (a cut file): count them, sample again
                    with VideoReader(path, threads=threads) as video:
                        everything = video.read_all()
                    logger.warning("%s: the header promises %d frames but only %d decode (%s); sampling those",
                                   path, count, len(everything), err.reason)
                    count = len(everything)
                    indices = [view_indices(count, fps, spec, v) for v in range(spec.num_views)]
                    return _from_all(path, everything, indices, fps, spec)
            else:
                frames = everything[np.minimum(idx, len(everything) - 1)]
            height, width = frames.shape[1:3]
            decoded[key] = _crops(frames, spec)
        crops.extend(decoded[key])
    return VideoViews(path, torch.stack(crops), indices, fps, count, height, width)


def _from_all(path: str, everything: np.ndarray, indices: list[np.ndarray], fps: float, spec: ViewSpec) -> VideoViews:
    crops = [c for idx in indices for c in _crops(everything[idx], spec)]
    height, width = everything.shape[1:3]
    return VideoViews(path, torch.stack(crops), indices, fps, len(everything), height, width)
