"""Small real video files for the task tests, written with PyAV."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import av
import numpy as np

ENCODERS = {  # container extension -> (PyAV encoder, pixel format)
    ".mp4": ("libx264", "yuv420p"),
    ".webm": ("libvpx-vp9", "yuv420p"),
    ".avi": ("mjpeg", "yuvj420p"),
    ".mkv": ("mpeg4", "yuv420p"),
}


def constant(colour: tuple[int, int, int]) -> Callable[[int, int, int], np.ndarray]:
    """Frames of one flat colour."""
    return lambda i, h, w: np.broadcast_to(np.array(colour, np.uint8), (h, w, 3)).copy()


def moving_square(i: int, h: int, w: int) -> np.ndarray:
    """A dark background with a bright square moving right by 3 px a frame."""
    img = np.full((h, w, 3), 30, np.uint8)
    x = (3 * i) % max(1, w - 12)
    img[h // 3 : h // 3 + 12, x : x + 12] = (250, 220, 40)
    return img


def write_video(path: str | Path, frames: int = 12, width: int = 64, height: int = 48, fps: int = 25,
                image: Callable[[int, int, int], np.ndarray] = moving_square, encoder: str | None = None) -> Path:
    """Encode `frames` frames of `image(i, height, width)` with the encoder the extension calls for."""
    path = Path(path)
    codec, pix_fmt = ENCODERS[path.suffix]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder or codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec != "libx264":
            stream.bit_rate = 4_000_000
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image(i, height, width)), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def first_frame(path: str | Path) -> np.ndarray:
    """The first decoded frame, RGB uint8 (H, W, 3), decoded here independently of vov3d."""
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")
