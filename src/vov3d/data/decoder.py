"""Video decoding with PyAV: seek to the clip, decode only what it needs, pick frames by time.

Spec §8.2. The original decodes a pts range around the clip, converts every decoded frame to RGB
and samples again over them. Here the clip's frame indices are computed over the whole video
first; each index k stands for the time k/fps, and the frame shown at that time (the last frame
whose timestamp is at most half a frame after it) is taken. Decoding starts at the key frame
before the first wanted time and stops after the last; frames that no wanted time shows are
decoded with skip_frame=NONREF (the decoder drops them unless other frames refer to them), and
only the chosen frames are converted to RGB.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import av
import numpy as np

from vov3d.data.errors import MediaError

logger = logging.getLogger(__name__)

IndexFn = Callable[[int, float], np.ndarray]
"""(number of frames, fps) -> frame indices of the clip."""


def _open(path: str, threads: int):
    try:
        container = av.open(path, metadata_errors="ignore")
    except FileNotFoundError:
        raise MediaError(path, "file not found") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise MediaError(path, f"cannot open video: {err}") from None
    if not container.streams.video:
        container.close()
        raise MediaError(path, "no video stream in the file")
    stream = container.streams.video[0]
    # One thread by default: DataLoader workers already use every core. More threads (frame and
    # slice threading) help a single process decoding long runs of frames.
    stream.thread_count = max(1, int(threads))
    if threads > 1:
        stream.thread_type = "AUTO"
    return container, stream


class VideoReader:
    """An open video file. Use as a context manager.

    Attributes: ``fps`` (average frame rate), ``duration`` (seconds or None), ``num_frames`` (from
    the stream header, else estimated from the duration; None if neither is known, then use
    :meth:`read_all`), ``decoded_frames`` (a running count).
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        self.path = str(path)
        self._container, self._stream = _open(self.path, threads)
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or float(rate) <= 0:
            self.close()
            raise MediaError(self.path, "the video stream has no frame rate")
        self.fps = float(rate)
        self._time_base = float(stream.time_base) if stream.time_base else None
        self._start_pts = stream.start_time or 0
        self.decoded_frames = 0  # frames output by the decoder so far (to check that seeking saves work)
        self.skip_unneeded = True  # let the decoder drop unreferenced frames that no wanted time shows
        duration = None
        if stream.duration is not None and self._time_base:
            duration = stream.duration * self._time_base
        elif self._container.duration is not None and self._container.duration > 0:
            duration = self._container.duration / av.time_base  # whole file, microseconds
        self.duration: float | None = duration
        if stream.frames and stream.frames > 0:
            self.num_frames: int | None = int(stream.frames)
        elif duration is not None and duration > 0:
            self.num_frames = max(1, int(round(duration * self.fps)))
        else:
            self.num_frames = None

    # -------------------------------------------------------------------------- lifetime
    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------------------- reading
    def _frames(self, wanted: np.ndarray | None = None):
        """Decoded frames, wrapping FFmpeg errors into MediaError.

        With `wanted` (sorted pts limits), a packet whose frame cannot be the one shown at a
        wanted time (no limit within 1.5 frames at or after its pts) is decoded with
        skip_frame=NONREF: the decoder drops it if no other frame refers to it (B-frames, mostly).
        """
        context = self._stream.codec_context
        window = 1.5 / (self.fps * self._time_base) if wanted is not None and self._time_base else 0.0
        skipping = False
        try:
            for packet in self._container.demux(self._stream):
                if wanted is not None:
                    pts = packet.pts
                    if pts is None:
                        skip = False
                    else:
                        k = int(np.searchsorted(wanted, pts, side="left"))
                        skip = k == len(wanted) or wanted[k] - window >= pts
                    if skip != skipping:
                        context.skip_frame = "NONREF" if skip else "DEFAULT"
                        skipping = skip
                for frame in packet.decode():
                    self.decoded_frames += 1
                    yield frame
        except av.error.FFmpegError as err:
            raise MediaError(self.path, f"decoding failed (corrupt or truncated file): {err}") from None
        finally:
            if skipping:
                context.skip_frame = "DEFAULT"

    def read_all(self) -> np.ndarray:
        """Every frame, in presentation order, as uint8 (N, H, W, 3) RGB (the naive way)."""
        frames = [f.to_ndarray(format="rgb24") for f in self._frames()]
        if not frames:
            raise MediaError(self.path, "no frame could be decoded")
        return np.stack(frames)

    def read_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames number `indices` (at times index/fps from the stream start), uint8 (N, H, W, 3) RGB."""
        return self.read_times(np.asarray(indices, dtype=np.float64) / self.fps)

    def read_times(self, times: Sequence[float] | np.ndarray) -> np.ndarray:
        """The frames shown at `times` (seconds from the stream start), uint8 (N, H, W, 3) RGB.

        Times may repeat and come in any order. A time past the last decodable frame gets the last
        frame, unless it is far past it (the file is truncated), which raises MediaError.
        """
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 1 or times.size == 0:
            raise ValueError("times must be a non-empty 1-d sequence")
        if self._time_base is None:
            raise MediaError(self.path, "the video stream has no time base; use read_all()")
        order = np.argsort(times, kind="stable")
        tb = self._time_base
        half = 0.5 / self.fps
        # Frame f is shown at time t if f.pts <= pts(t + half frame) and the next frame is not.
        limits = self._start_pts + (times[order] + half) / tb
        seek_pts = int(self._start_pts + times[order[0]] / tb)
        picked = self._pick(limits, seek_pts)
        if picked is None:  # the seek overshot the first wanted frame or decoded nothing: decode from the start
            try:
                self._container.seek(0, stream=self._stream, backward=True, any_frame=False)
            except av.error.FFmpegError as err:
                raise MediaError(self.path, f"seek failed: {err}") from None
            picked = self._pick(limits, None)
        frames, last_time = picked
        wanted_last = float(times[order[-1]])
        slack = 2.0 / self.fps + min(1.0, 0.1 * (self.duration or 0.0))
        if wanted_last > last_time + slack:
            raise MediaError(
                self.path,
                f"the video ends at {last_time:.3f} s but the clip needs {wanted_last:.3f} s "
                "(truncated file or wrong header)",
            )
        out = np.empty((times.size,) + frames[0].shape, dtype=np.uint8)
        out[order] = np.stack(frames)
        return out

    def _pick(self, limits: np.ndarray, seek_pts: int | None):
        """Decode from `seek_pts` and take, for each sorted limit, the last frame with pts <= limit.

        Returns (arrays in the order of `limits`, time of the last decoded frame), or None if a
        seek landed after the first wanted frame or nothing could be decoded after it (an MPEG-TS
        file whose codec headers come only at its start, for one).
        """
        if seek_pts is not None and seek_pts > self._start_pts:
            try:
                self._container.seek(seek_pts, stream=self._stream, backward=True, any_frame=False)
            except av.error.FFmpegError as err:
                raise MediaError(self.path, f"seek failed: {err}") from None
        else:
            seek_pts = None
        out: list[np.ndarray] = []
        n = len(limits)
        prev = prev_array = None
        last_pts = None
        for frame in self._frames(limits if self.skip_unneeded else None):
            pts = frame.pts
            if pts is None:
                raise MediaError(self.path, "decoded frames carry no timestamps; use read_all()")
            if prev is None and pts > limits[0] and seek_pts is not None:
                return None
            last_pts = pts
            while len(out) < n and limits[len(out)] < pts:
                # the previous frame is the last one at or before this limit
                if prev is None:  # the first wanted time lies before the first frame
                    prev, prev_array = frame, frame.to_ndarray(format="rgb24")
                if prev_array is None:
                    prev_array = prev.to_ndarray(format="rgb24")
                out.append(prev_array)
            if len(out) == n:
                break
            prev, prev_array = frame, None
        if last_pts is None:
            if seek_pts is not None:  # nothing decodable after the seek (e.g. stream headers only at the start)
                return None
            raise MediaError(self.path, "no frame could be decoded")
        if len(out) < n:
            if prev_array is None:
                prev_array = prev.to_ndarray(format="rgb24")
            out.extend([prev_array] * (n - len(out)))
        return out, (last_pts - self._start_pts) * self._time_base


def read_clip(path: str | Path, index_fn: IndexFn, *, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Decode the clip of `path` whose frame indices `index_fn(num_frames, fps)` gives.

    Returns (uint8 RGB frames (T, H, W, 3), the indices). If the file states neither a frame count
    nor a duration, the whole video is decoded to count its frames (as the original does).
    """
    with VideoReader(path, threads=threads) as video:
        if video.num_frames is None:
            frames = video.read_all()
            indices = index_fn(len(frames), video.fps)
            return frames[indices], indices
        indices = index_fn(video.num_frames, video.fps)
        return video.read_indices(indices), indices

