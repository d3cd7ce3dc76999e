"""Reading extracted JPEG frames (spec §8.3).

JPEGs are decoded with simplejpeg (libjpeg-turbo straight into a numpy array), other formats with
Pillow. simplejpeg uses libjpeg-turbo's default accurate DCT and fancy upsampling, the settings
cv2.imdecode (the original's reader) uses; docs/data.md gives the measured speed against Pillow.
Frames come out RGB; the datasets apply the original's BGR convention afterwards.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import simplejpeg

from vov3d.data.errors import MediaError

_JPEG_MAGIC = b"\xff\xd8"


def decode_image(data: bytes, path: str | Path = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to uint8 (H, W, 3) RGB; `path` only names the source in errors."""
    if not data:
        raise MediaError(path, "empty image file")
    if data[:2] == _JPEG_MAGIC:
        try:
            # strict: a truncated or damaged JPEG is an error, not a half-grey image
            return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
        except ValueError as err:
            raise MediaError(path, f"corrupt JPEG: {err}") from None
    from PIL import Image, UnidentifiedImageError  # only for the rare non-JPEG frame

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise MediaError(path, f"not a readable image: {err}") from None


def read_image(path: str | Path) -> np.ndarray:
    """Read one frame file as uint8 (H, W, 3) RGB; MediaError if it is missing or corrupt."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise MediaError(path, "frame file not found") from None
    except OSError as err:
        raise MediaError(path, f"cannot read frame: {err}") from None
    return decode_image(data, path)


def read_frames(paths: Sequence[str | Path]) -> np.ndarray:
    """Read frames into one uint8 (T, H, W, 3) RGB array; all must have the same size."""
    if len(paths) == 0:
        raise ValueError("no frame paths given")
    first = read_image(paths[0])
    out = np.empty((len(paths),) + first.shape, dtype=np.uint8)
    out[0] = first
    cache = {str(paths[0]): 0}
    for i, path in enumerate(paths[1:], start=1):
        key = str(path)
        if key in cache:  # short videos repeat frames; decode each file once
            out[i] = out[cache[key]]
            continue
        image = read_image(path)
        if image.shape != first.shape:
            raise MediaError(path, f"frame size {image.shape[:2]} differs from {first.shape[:2]} of {paths[0]}")
        out[i] = image
        cache[key] = i
    return out
