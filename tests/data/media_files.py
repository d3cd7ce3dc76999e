"""Writers of small real media files for the data tests (videos with PyAV, JPEG frames).

Frame i of a written video is a flat grey of level ``level(i)`` with a coloured square whose
colour is `colour` (RGB), so tests can tell frames and channel order apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import simplejpeg

CODECS = {  # name -> (extension, PyAV encoder)
    "h264": (".mp4", "libx264"),
    "mpeg4": (".mp4", "mpeg4"),
    "vp8": (".webm", "libvpx"),
    "vp9": (".webm", "libvpx-vp9"),
    "avi": (".avi", "mpeg4"),
}


def level(i: int) -> int:
    return 16 + 5 * i


_TEXTURE = np.random.default_rng(0).integers(0, 256, (256, 512, 3), dtype=np.uint8)


def frame_image(i: int, width: int = 64, height: int = 48, colour=(255, 0, 0), textured: bool = False) -> np.ndarray:
    if textured:  # a noise texture panning one pixel a frame: real motion, B-frames in h264
        return np.ascontiguousarray(_TEXTURE[:height, i : i + width])
    img = np.full((height, width, 3), level(i) % 256, np.uint8)
    img[: height // 2, : width // 2] = colour
    return img


def write_video(
    path: str | Path,
    codec: str = "h264",
    num_frames: int = 40,
    width: int = 64,
    height: int = 48,
    fps: int = 30,
    colour=(255, 0, 0),
    gop: int | None = None,
    options: dict | None = None,
    textured: bool = False,
) -> Path:
    """Encode a video; `codec` is a key of CODECS."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoder = CODECS[codec][1]
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec in ("mpeg4", "avi", "vp8", "vp9"):
            stream.bit_rate = 2_000_000
        if gop is not None:
            stream.gop_size = gop
            if encoder == "libx264":
                stream.options = {"keyint": str(gop), "min-keyint": str(gop), "scenecut": "0"}
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_image(i, width, height, colour, textured), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_stack(num_frames: int) -> np.ndarray:
    """uint8 RGB frames 0 .. num_frames-1 (``frame_image``), stacked (T, 48, 64, 3)."""
    return np.stack([frame_image(i) for i in range(num_frames)])


def encode_h264(
    path: str | Path,
    frames: np.ndarray,
    container_format: str | None = None,
    fps: int = 30,
    gop: int = 10,
    audio: bool = False,
    x264_params: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Encode uint8 RGB `frames` with libx264 (a key frame every `gop`) into any container FFmpeg
    writes (by extension, or `container_format`: "mpegts", "h264" for a raw stream, ...), with an
    optional audio track and container metadata."""
    path = Path(path)
    with av.open(str(path), "w", format=container_format) as container:
        container.metadata.update(metadata or {})
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0" + (f":{x264_params}" if x264_params else "")
        stream = container.add_stream("libx264", rate=fps, options={"x264-params": params})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        sound = container.add_stream("aac", rate=8000) if audio else None
        samples = 0
        for i, image in enumerate(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
            while sound is not None and samples < (i + 1) * 8000 // fps + 1024:
                tone = (0.1 * np.sin(np.arange(samples, samples + 1024) / 5)).astype(np.float32)[None]
                chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 8000, samples
                samples += 1024
                for packet in sound.encode(chunk):
                    container.mux(packet)
        for s in (stream, sound) if sound is not None else (stream,):
            for packet in s.encode():
                container.mux(packet)
    return path


def write_jpeg(path: str | Path, image: np.ndarray, quality: int = 95) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(simplejpeg.encode_jpeg(np.ascontiguousarray(image), quality=quality, colorspace="RGB"))
    return path


def write_kinetics(root: Path, videos: dict[str, list[tuple[str, int]]], newline: str = "\n") -> Path:
    """Write {split}.csv files; `videos` maps split -> [(relative path, label)]. Videos are not written."""
    root.mkdir(parents=True, exist_ok=True)
    for split, rows in videos.items():
        (root / f"{split}.csv").write_bytes(newline.join(f"{p} {label}" for p, label in rows).encode())
    return root


def write_frame_folder(root: Path, video_id: str, num_frames: int, colour=(255, 0, 0)) -> list[str]:
    """JPEG frames ``root/{id}/{id}_000001.jpg ...``; returns their paths relative to root."""
    rel = []
    for i in range(num_frames):
        name = f"{video_id}/{video_id}_{i + 1:06d}.jpg"
        write_jpeg(root / name, frame_image(i, colour=colour))
        rel.append(name)
    return rel


def write_frame_list(path: Path, frames: dict[str, list[str]], label: int = 0, newline: str = "\n") -> Path:
    lines = ["original_vido_id video_id frame_id path labels"]
    for n, (vid, paths) in enumerate(frames.items()):
        lines += [f"{vid} {n} {i} {p} {label}" for i, p in enumerate(paths)]
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


def write_ssv2_annotations(root: Path, classes: list[str], split_file: str, rows: list[tuple[str, int]]) -> None:
    (root / "something-something-v2-labels.json").write_text(json.dumps({c: str(i) for i, c in enumerate(classes)}))
    entries = []
    for vid, label in rows:
        template = classes[label].replace("something", "[something]")
        entries.append({"id": vid, "label": classes[label], "template": template, "placeholders": []})
    (root / split_file).write_text(json.dumps(entries))
