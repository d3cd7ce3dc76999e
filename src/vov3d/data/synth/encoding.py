"""Writing rendered frames as files: reproducible H.264/VP9 videos and JPEG frames.

The same frames give the same bytes on every run and machine with the same libraries (one
encoder thread, integer colour conversion, bit-exact muxing), which the dataset's determinism
rests on (docs/synthetic_data.md).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from vov3d.data.synth.frame_times import KINETICS_FPS, SS_VIDEO_FPS
from vov3d.utils.atomic import atomic_output_path

JPEG_QUALITY = 90


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


def encode_video(path: Path, frames: np.ndarray, fps: int, codec: str, options: dict[str, str]) -> None:
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


H264_OPTIONS = _x264_options()
VP9_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0", "g": str(SS_VIDEO_FPS)}


def write_jpegs(folder: Path, vid: str, jpegs: list[bytes]) -> None:
    """``folder/{vid}_000001.jpg``, ... (the Something-Something frame names)."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, data in enumerate(jpegs, start=1):
        (folder / f"{vid}_{number:06d}.jpg").write_bytes(data)


def encode_jpegs(frames: np.ndarray) -> list[bytes]:
    """RGB frames (T, H, W, 3) as JPEG files' bytes (quality JPEG_QUALITY)."""
    import simplejpeg

    return [simplejpeg.encode_jpeg(np.ascontiguousarray(f), quality=JPEG_QUALITY, colorspace="RGB") for f in frames]
