"""Scenes of the built-in synthetic temporal dataset and their exact, time-reversible rendering.

A `Scene` is a static textured background plus a few objects. Each object's state (centre,
radius, angle, opacity) moves from a first to a last key state between two integer ticks
of a 60 Hz clock (the common multiple of the 30 fps and 12 fps frame rates of spec §8.2,
§8.3). Everything that depends on time is integer arithmetic or written so that IEEE
rounding is symmetric. The result: `scene.time_reversed().render(ticks)` equals
`scene.render(ticks)[::-1]` bit for bit whenever `ticks` is symmetric around
`duration / 2`. The paired classes of `vov3d.data.synth.scenes` rely on this (docs/synthetic_data.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

TICKS_PER_SECOND = 60
"""Scene clock: ticks per second. Frames at 30 fps fall on every 2nd tick, at 12 fps on every 5th."""

PROGRESS_SCALE = 1 << 20
"""Progress of a motion is an integer in [0, PROGRESS_SCALE] (even, so that half-way is exact)."""

SHAPES = ("circle", "triangle", "square", "diamond", "pentagon", "hexagon", "cross")
BACKGROUND_KINDS = ("noise", "gradient", "stripes", "checker")

Colour = tuple[int, int, int]
State = tuple[float, float, float, float, float]
"""Object state: (x, y, radius, angle, opacity). x, y in pixels (column, row) of the frame;
angle in radians, increasing = clockwise on screen (rows grow downwards); opacity in [0, 1]."""


@dataclass(frozen=True)
class Timing:
    """When a motion happens: progress is 0 up to tick `start`, 1 from tick `end` on.

    `smooth` selects a smoothstep ease-in/out instead of constant speed. Both easings are
    point-symmetric about the middle of the motion, which the exact time reversal needs.
    """

    start: int
    end: int
    smooth: bool = False

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"a motion must last at least one tick, got start={self.start}, end={self.end}")

    def progress(self, ticks: np.ndarray) -> np.ndarray:
        """Integer progress in [0, PROGRESS_SCALE] at each tick, with p(k) + p(d − k) = PROGRESS_SCALE exactly."""
        length = self.end - self.start
        k = np.clip(np.asarray(ticks, dtype=np.int64) - self.start, 0, length)
        first_half = 2 * k <= length
        # Evaluate the easing only on the first half and mirror it, so the symmetry is exact.
        near = np.where(first_half, k, length - k) / length
        eased = near * near * (3.0 - 2.0 * near) if self.smooth else near
        half_progress = np.rint(PROGRESS_SCALE * eased).astype(np.int64)
        return np.where(first_half, half_progress, PROGRESS_SCALE - half_progress)

    def time_reversed(self, duration: int) -> "Timing":
        """The same motion on the clock reversed about `duration` (tick t becomes duration − t)."""
        return Timing(duration - self.end, duration - self.start, self.smooth)


@dataclass(frozen=True)
class SceneObject:
    """A filled shape moving from state `first` to state `last` with `timing`.

    With `second_colour`, the half of the shape below its local horizontal axis takes that
    colour, so that its orientation (and rotation) is visible even for a circle.
    """

    shape: str
    colour: Colour
    first: State
    last: State
    timing: Timing
    second_colour: Colour | None = None

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; accepted: {', '.join(SHAPES)}")

    def states(self, ticks: np.ndarray) -> np.ndarray:
        """(len(ticks), 5) float64 states. Written as first·(S − p) + last·p so that swapping
        first/last and reversing the progress gives bit-identical sums."""
        p = self.timing.progress(ticks)[:, None]
        first = np.asarray(self.first, dtype=np.float64)
        last = np.asarray(self.last, dtype=np.float64)
        return (first * (PROGRESS_SCALE - p) + last * p) / PROGRESS_SCALE

    def time_reversed(self, duration: int) -> "SceneObject":
        return replace(self, first=self.last, last=self.first, timing=self.timing.time_reversed(duration))


@dataclass(frozen=True)
class Background:
    """A static texture between two colours, plus static grain. `seed` fixes its random parts."""

    kind: str
    colours: tuple[Colour, Colour]
    angle: float
    period: float
    grain: float
    seed: int

    def __post_init__(self) -> None:
        if self.kind not in BACKGROUND_KINDS:
            raise ValueError(f"unknown background {self.kind!r}; accepted: {', '.join(BACKGROUND_KINDS)}")

    def render(self, width: int, height: int) -> np.ndarray:
        """(height, width, 3) float32 image with values in [0, 255]."""
        rng = np.random.default_rng(self.seed)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        c, s = math.cos(self.angle), math.sin(self.angle)
        along, across = c * xs + s * ys, -s * xs + c * ys
        if self.kind == "gradient":
            mix = (along - along.min()) / max(along.max() - along.min(), 1e-9)
        elif self.kind == "stripes":
            mix = 0.5 + 0.5 * np.sin(2 * math.pi * along / self.period + rng.uniform(0, 2 * math.pi))
        elif self.kind == "checker":
            mix = (np.floor(along / self.period) + np.floor(across / self.period)) % 2
        else:  # "noise": a coarse random field, bilinearly upsampled
            rows, cols = int(height / self.period) + 2, int(width / self.period) + 2
            coarse = rng.random((rows, cols))
            fy, fx = ys / self.period, xs / self.period
            y0, x0 = fy.astype(np.int64), fx.astype(np.int64)
            wy, wx = fy - y0, fx - x0
            top = coarse[y0, x0] * (1 - wx) + coarse[y0, x0 + 1] * wx
            bottom = coarse[y0 + 1, x0] * (1 - wx) + coarse[y0 + 1, x0 + 1] * wx
            mix = top * (1 - wy) + bottom * wy
        low, high = (np.asarray(col, dtype=np.float64) for col in self.colours)
        image = low + (high - low) * mix[..., None]
        image += rng.normal(0.0, self.grain, size=image.shape)
        return np.clip(image, 0, 255).astype(np.float32)


@dataclass(frozen=True)
class Scene:
    """A clip: `width`×`height` frames on ticks 0..`duration`; objects are drawn in order."""

    width: int
    height: int
    duration: int
    background: Background
    objects: tuple[SceneObject, ...] = field(default_factory=tuple)

    def time_reversed(self) -> "Scene":
        """The scene played backwards: frame at tick t becomes the frame at tick duration − t."""
        return replace(self, objects=tuple(o.time_reversed(self.duration) for o in self.objects))

    def render(self, ticks: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 frames (len(ticks), height, width, 3), RGB."""
        ticks = np.asarray(ticks, dtype=np.int64)
        background = self.background.render(self.width, self.height)
        states = [o.states(ticks) for o in self.objects]
        frames = np.empty((len(ticks), self.height, self.width, 3), dtype=np.uint8)
        for i in range(len(ticks)):
            canvas = background.copy()
            for obj, obj_states in zip(self.objects, states):
                _draw(canvas, obj, obj_states[i])
            np.rint(canvas, out=canvas)
            frames[i] = np.clip(canvas, 0, 255)
        return frames


def _box_sdf(u: np.ndarray, v: np.ndarray, half_u: float, half_v: float) -> np.ndarray:
    qu, qv = np.abs(u) - half_u, np.abs(v) - half_v
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    return outside + np.minimum(np.maximum(qu, qv), 0)


_POLYGONS = {  # sides, direction of the first edge normal (down = pi/2: a flat base)
    "triangle": (3, math.pi / 2),
    "square": (4, 0.0),
    "diamond": (4, math.pi / 4),
    "pentagon": (5, math.pi / 2),
    "hexagon": (6, math.pi / 2),
}


def _signed_distance(shape: str, u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) in the object's local frame; `radius` = circumradius."""
    if shape == "circle":
        return np.hypot(u, v) - radius
    if shape == "cross":
        arm = 0.35 * radius
        return np.minimum(_box_sdf(u, v, radius, arm), _box_sdf(u, v, arm, radius))
    # A regular polygon is the intersection of half-planes, one per edge.
    sides, offset = _POLYGONS[shape]
    distance = None
    for k in range(sides):
        theta = offset + 2 * math.pi * k / sides
        d = u * math.cos(theta) + v * math.sin(theta)
        distance = d if distance is None else np.maximum(distance, d)
    return distance - radius * math.cos(math.pi / sides)


def _draw(canvas: np.ndarray, obj: SceneObject, state: np.ndarray) -> None:
    """Alpha-composite one object, anti-aliased over one pixel, onto the float canvas in place."""
    x, y, radius, angle, opacity = (float(v) for v in state)
    if opacity <= 0.0 or radius <= 0.0:
        return
    height, width = canvas.shape[:2]
    reach = 1.1 * radius + 1.5
    x0, x1 = max(0, math.floor(x - reach)), min(width, math.ceil(x + reach) + 1)
    y0, y1 = max(0, math.floor(y - reach)), min(height, math.ceil(y + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    dx = np.arange(x0, x1, dtype=np.float32) - np.float32(x)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(y)
    c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    u, v = c * dx + s * dy, c * dy - s * dx  # screen offset rotated by −angle into the local frame
    coverage = np.clip(0.5 - _signed_distance(obj.shape, u, v, radius), 0, 1) * np.float32(opacity)
    colour = np.asarray(obj.colour, dtype=np.float32)
    if obj.second_colour is not None:
        lower = np.clip(0.5 + v, 0, 1)[..., None]
        colour = colour + (np.asarray(obj.second_colour, dtype=np.float32) - colour) * lower
    patch = canvas[y0:y1, x0:x1]
    patch += coverage[..., None] * (colour - patch)
