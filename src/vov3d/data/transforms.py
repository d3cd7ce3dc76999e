"""Spatial transforms on clip tensors (spec §8.1, §8.4), in plain torch ops.

Clips are float tensors (C, T, H, W). Randomness comes in as a numpy Generator.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def jitter_size(min_size: int, max_size: int, inverse_uniform: bool, rng: np.random.Generator) -> int:
    """Short-side target size for scale jitter (§8.4 step 1).

    Uniform: round(U(min, max)); inverse-uniform: round(1 / U(1/max, 1/min)). Rounding is half to
    even as in the original (Python's round of a float).
    """
    if inverse_uniform:
        return int(round(1.0 / rng.uniform(1.0 / max_size, 1.0 / min_size)))
    return int(round(rng.uniform(min_size, max_size)))


def scaled_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) after scaling the short side to `size`; long side = floor(long/short·size) (§8.4)."""
    if width < height:
        return int(math.floor(float(height) / width * size)), size
    return size, int(math.floor(float(width) / height * size))


def scale_short_side(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (C, T, H, W) so the short side is `size`, bilinear, align_corners=False (§8.4).

    A clip whose short side already equals `size` is returned unchanged.
    """
    height, width = clip.shape[-2:]
    if min(height, width) == size:
        return clip
    new_h, new_w = scaled_size(height, width, size)
    return F.interpolate(clip, size=(new_h, new_w), mode="bilinear", align_corners=False)


def random_crop(clip: torch.Tensor, size: int, rng: np.random.Generator) -> torch.Tensor:
    """A size×size crop at uniform random offsets in [0, H−size] and [0, W−size], both inclusive.

    The original's bound is exclusive, so it never uses the last offset, and it returns a bare
    tensor instead of a tuple when the clip already has the crop size (§11.13). Neither here.
    """
    height, width = clip.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} from a {height}x{width} clip")
    y = int(rng.integers(0, height - size, endpoint=True))
    x = int(rng.integers(0, width - size, endpoint=True))
    return clip[..., y : y + size, x : x + size]


def crop_offsets(height: int, width: int, size: int, spatial_index: int) -> tuple[int, int]:
    """(y, x) of test crop `spatial_index` (§8.4).

    1 = centre, offsets ceil((H−S)/2), ceil((W−S)/2); 0 = left (landscape) or top (portrait);
    2 = right or bottom. A square frame counts as landscape.
    """
    if spatial_index not in (0, 1, 2):
        raise ValueError(f"spatial index must be 0, 1 or 2, got {spatial_index}")
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} from a {height}x{width} clip")
    y = int(math.ceil((height - size) / 2))
    x = int(math.ceil((width - size) / 2))
    if height > width:
        if spatial_index == 0:
            y = 0
        elif spatial_index == 2:
            y = height - size
    else:
        if spatial_index == 0:
            x = 0
        elif spatial_index == 2:
            x = width - size
    return y, x


def uniform_crop(clip: torch.Tensor, size: int, spatial_index: int) -> torch.Tensor:
    """The test crop `spatial_index` (0, 1, 2) of size×size (§8.4)."""
    y, x = crop_offsets(clip.shape[-2], clip.shape[-1], size, spatial_index)
    return clip[..., y : y + size, x : x + size]


def horizontal_flip(clip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right (the last axis)."""
    return clip.flip(-1)


def normalize(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(clip − mean) / std per channel, for a (C, T, H, W) clip in [0, 1] (§8.1 step 2)."""
    m = torch.as_tensor(mean, dtype=clip.dtype).view(-1, 1, 1, 1)
    s = torch.as_tensor(std, dtype=clip.dtype).view(-1, 1, 1, 1)
    return (clip - m) / s


def spatial_sample(
    clip: torch.Tensor,
    spatial_index: int,
    *,
    min_scale: int,
    max_scale: int,
    crop_size: int,
    random_flip: bool,
    inverse_uniform: bool,
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """The original's ``spatial_sampling`` (§8.4) on a (C, T, H, W) clip.

    spatial_index −1 (train, val): jitter the short side in [min_scale, max_scale], random crop,
    flip with probability 0.5 if `random_flip`. 0/1/2 (test): scale the short side to
    `min_scale` (callers pass min = max = crop) and take crop `spatial_index`. Draws from `rng` in
    the order size, y, x, flip.
    """
    if spatial_index == -1:
        if rng is None:
            raise ValueError("random spatial sampling needs a numpy Generator")
        size = jitter_size(min_scale, max_scale, inverse_uniform, rng)
        clip = random_crop(scale_short_side(clip, size), crop_size, rng)
        if random_flip and rng.uniform() < 0.5:
            clip = horizontal_flip(clip)
        return clip
    if min_scale != max_scale:
        raise ValueError("test crops need min_scale == max_scale")
    return uniform_crop(scale_short_side(clip, min_scale), crop_size, spatial_index)
