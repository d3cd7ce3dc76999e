"""The frame grids of the synthetic formats on the 60 Hz scene clock (spec §8.2, §8.3).

Kinetics videos run at 30 fps, SSv1 frames and SSv2 videos at 12 fps like the real datasets, and
SSv2 frame folders hold 30 fps frames extracted from the 12 fps videos as ``ffmpeg -r 30`` does.
"""

from __future__ import annotations

import numpy as np

from vov3d.data.synth.render import TICKS_PER_SECOND

KINETICS_FPS = 30
SS_VIDEO_FPS = 12
"""SSv1 frames and SSv2 .webm videos run at 12 fps like the real datasets."""
SS_EXTRACTED_FPS = 30
"""SSv2 frame folders are 30 fps, as extracted with `ffmpeg -r 30` (spec §8.3)."""


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
