"""What happens in a synthetic video of each class: the 12 classes and their random scenes.

Classes come in 6 pairs whose members are exact time reversals of each other (class 2k+1 = class
2k played backwards, docs/synthetic_data.md): :func:`sample_scene` draws the parameters of the
pair's forward class and reverses the scene in time for the odd class. Rendering is
``synth/render.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from vov3d.data.synth.frame_times import scene_duration
from vov3d.data.synth.levels import DEFAULT_LEVEL, Level, get_level
from vov3d.data.synth.render import BACKGROUND_KINDS, SHAPES, Background, Colour, Scene, SceneObject, Timing

CLASS_TEMPLATES = (
    "Moving [something] from left to right",
    "Moving [something] from right to left",
    "Moving [something] down",
    "Moving [something] up",
    "[Something] growing",
    "[Something] shrinking",
    "Turning [something] clockwise",
    "Turning [something] counterclockwise",
    "[Something] appearing",
    "[Something] disappearing",
    "Moving [something] and [something] closer to each other",
    "Moving [something] and [something] away from each other",
)
"""SSv2-style templates; class id = position. Class 2k+1 is class 2k reversed in time."""

CLASS_NAMES = tuple(t.replace("[", "").replace("]", "") for t in CLASS_TEMPLATES)
"""Class names as the readers see them (brackets stripped, spec §8.3)."""

NUM_CLASSES = len(CLASS_NAMES)
DEFAULT_FRAME_SIZE = get_level(DEFAULT_LEVEL).frame_size
"""(width, height) of the frames (of the full level)."""
DEFAULT_NUM_FRAMES = get_level(DEFAULT_LEVEL).num_frames
"""Frames at 30 fps: 3 s from the first to the last frame (180 ticks, 37 frames at 12 fps)."""

_COLOUR_NAMES = {
    "red": (210, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (235, 220, 50),
    "green": (50, 170, 60),
    "cyan": (40, 200, 210),
    "blue": (40, 70, 210),
    "purple": (130, 50, 180),
    "pink": (240, 130, 190),
    "brown": (120, 75, 35),
    "white": (245, 245, 245),
    "grey": (128, 128, 128),
    "black": (15, 15, 15),
}


def paired_class(class_id: int) -> int:
    """The class whose clips are the time reversals of `class_id`'s clips."""
    if not 0 <= class_id < NUM_CLASSES:
        raise ValueError(f"class id must be in [0, {NUM_CLASSES}), got {class_id}")
    return class_id ^ 1


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, max(low, high)))


def _random_colour(rng: np.random.Generator, avoid: Iterable[Colour], min_distance: float = 90.0) -> Colour:
    avoid = [np.asarray(c, dtype=np.float64) for c in avoid]
    for _ in range(64):
        colour = rng.integers(0, 256, size=3)
        if all(np.linalg.norm(colour - a) >= min_distance for a in avoid):
            break
    return (int(colour[0]), int(colour[1]), int(colour[2]))


def _random_timing(rng: np.random.Generator, duration: int, min_fraction: float = 0.4) -> Timing:
    """A motion of random length (≥ min_fraction of the clip) at a random time.

    The distribution is invariant under time reversal (start ↔ duration − end).
    """
    shortest = max(1, math.ceil(min_fraction * duration))
    length = int(rng.integers(shortest, duration + 1))
    start = int(rng.integers(0, duration - length + 1))
    return Timing(start, start + length, smooth=bool(rng.random() < 0.5))


def _sample_background(rng: np.random.Generator, size: float) -> Background:
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    low = _random_colour(rng, [])
    high = _random_colour(rng, [low], min_distance=40.0)
    scale = size / 120.0
    period = {"noise": (8, 24), "stripes": (6, 24), "checker": (6, 20), "gradient": (1, 1)}[kind]
    return Background(
        kind=kind,
        colours=(low, high),
        angle=float(rng.uniform(0, math.pi)),
        period=max(2.0, _uniform(rng, *period) * scale),
        grain=float(rng.uniform(2.0, 8.0)),
        seed=int(rng.integers(2**63)),
    )


PLAIN_BACKGROUND = (128, 128, 128)
"""The easy level's background: mid grey (a random colour a clip made the start of learning much slower)."""


def _plain_background() -> Background:
    """One flat grey, no texture and no grain (the easy level)."""
    return Background("gradient", (PLAIN_BACKGROUND, PLAIN_BACKGROUND), angle=0.0, period=1.0, grain=0.0, seed=0)


@dataclass(frozen=True)
class _Frame:
    """Frame geometry and the level's object size and motion length, for the samplers."""

    width: int
    height: int
    duration: int
    object_scale: float = 1.0
    min_motion_fraction: float = 0.4

    @property
    def size(self) -> float:
        return float(min(self.width, self.height))

    @property
    def object_size(self) -> float:
        """The length the main objects' radii are fractions of (the frame's size at the full level)."""
        return self.size * self.object_scale

    def timing(self, rng: np.random.Generator) -> Timing:
        """The main action's timing at this level."""
        return _random_timing(rng, self.duration, self.min_motion_fraction)


def _main_object(
    rng: np.random.Generator,
    background: Background,
    first: tuple[float, ...],
    last: tuple[float, ...],
    timing: Timing,
) -> SceneObject:
    """A two-tone object of random shape and colours going from state `first` to `last`."""
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    colour = _random_colour(rng, background.colours)
    second = _random_colour(rng, [*background.colours, colour], min_distance=70.0)
    return SceneObject(shape, colour, tuple(first), tuple(last), timing, second_colour=second)


def _sample_translation(rng, frame: _Frame, background: Background, vertical: bool) -> list[SceneObject]:
    """Forward classes 0 and 2: moving left → right, or top → bottom."""
    length, other = (frame.height, frame.width) if vertical else (frame.width, frame.height)
    radius = _uniform(rng, 0.08, 0.14) * frame.object_size
    distance = _uniform(rng, 0.35 * length, min(0.6 * length, length - 2 * radius - 2))
    along = _uniform(rng, radius + 1, length - radius - 1 - distance)
    across = _uniform(rng, radius + 1, other - radius - 1)
    drift = float(np.clip(across + rng.uniform(-0.1, 0.1) * distance, radius + 1, other - radius - 1))
    angle = float(rng.uniform(0, 2 * math.pi))
    if vertical:
        first, last = (across, along, radius, angle, 1.0), (drift, along + distance, radius, angle, 1.0)
    else:
        first, last = (along, across, radius, angle, 1.0), (along + distance, drift, radius, angle, 1.0)
    return [_main_object(rng, background, first, last, frame.timing(rng))]


def _random_position(rng, frame: _Frame, margin: float) -> tuple[float, float]:
    return _uniform(rng, margin, frame.width - margin), _uniform(rng, margin, frame.height - margin)


def _sample_growing(rng, frame: _Frame, background: Background) -> list[SceneObject]:
    """Forward class 4: the object's size grows 2–3×."""
    small = _uniform(rng, 0.05, 0.08) * frame.object_size
    large = min(small * _uniform(rng, 2.0, 3.0), 0.3 * frame.object_size, 0.42 * frame.size)
    x, y = _random_position(rng, frame, 1.1 * large + 1)
    angle = float(rng.uniform(0, 2 * math.pi))
    timing = frame.timing(rng)
    return [_main_object(rng, background, (x, y, small, angle, 1.0), (x, y, large, angle, 1.0), timing)]


def _sample_rotation(rng, frame: _Frame, background: Background) -> list[SceneObject]:
    """Forward class 6: the object turns clockwise (on screen) by 90–170 degrees."""
    radius = _uniform(rng, 0.12, 0.2) * frame.object_size
    x, y = _random_position(rng, frame, 1.1 * radius + 1)
    angle = float(rng.uniform(0, 2 * math.pi))
    turn = math.radians(_uniform(rng, 90.0, 170.0))
    timing = frame.timing(rng)
    first, last = (x, y, radius, angle, 1.0), (x, y, radius, angle + turn, 1.0)
    return [_main_object(rng, background, first, last, timing)]


def _sample_appearing(rng, frame: _Frame, background: Background) -> list[SceneObject]:
    """Forward class 8: the object fades in from fully transparent to opaque."""
    radius = _uniform(rng, 0.08, 0.16) * frame.object_size
    x, y = _random_position(rng, frame, 1.1 * radius + 1)
    angle = float(rng.uniform(0, 2 * math.pi))
    timing = frame.timing(rng)
    return [_main_object(rng, background, (x, y, radius, angle, 0.0), (x, y, radius, angle, 1.0), timing)]


def _sample_approaching(rng, frame: _Frame, background: Background) -> list[SceneObject]:
    """Forward class 10: two objects move towards each other along a line until nearly touching."""
    radii = [_uniform(rng, 0.07, 0.11) * frame.object_size for _ in range(2)]
    direction = float(rng.uniform(0, math.pi))
    cos, sin = math.cos(direction), math.sin(direction)
    far = _uniform(rng, 0.5, 0.75) * frame.size
    near = sum(radii) + _uniform(rng, 1.0, 0.05 * frame.size)
    reach = max(radii) + 1
    cx = _uniform(rng, abs(cos) * far / 2 + reach, frame.width - abs(cos) * far / 2 - reach)
    cy = _uniform(rng, abs(sin) * far / 2 + reach, frame.height - abs(sin) * far / 2 - reach)
    timing = frame.timing(rng)
    objects = []
    for side, radius in zip((-1, 1), radii):
        angle = float(rng.uniform(0, 2 * math.pi))
        first = (cx + side * cos * far / 2, cy + side * sin * far / 2, radius, angle, 1.0)
        last = (cx + side * cos * near / 2, cy + side * sin * near / 2, radius, angle, 1.0)
        objects.append(_main_object(rng, background, first, last, timing))
    return objects


def _sample_distractor(rng, frame: _Frame, background: Background) -> SceneObject:
    """A small one-colour object on a random straight path, spinning a random amount.

    Start and end points are i.i.d. (accepted when close enough), so a path and its
    reversal are equally likely: distractors carry no arrow of time.
    """
    radius = _uniform(rng, 0.025, 0.05) * frame.size
    reach = 0.4 * frame.size
    start = _random_position(rng, frame, radius + 1)
    end = start
    for _ in range(100):
        a, b = _random_position(rng, frame, radius + 1), _random_position(rng, frame, radius + 1)
        if math.dist(a, b) <= reach:
            start, end = a, b
            break
    angle = float(rng.uniform(0, 2 * math.pi))
    spin = float(rng.uniform(-math.pi, math.pi))
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    colour = _random_colour(rng, background.colours, min_distance=60.0)
    timing = _random_timing(rng, frame.duration, min_fraction=0.3)
    first, last = (*start, radius, angle, 1.0), (*end, radius, angle + spin, 1.0)
    return SceneObject(shape, colour, first, last, timing)


_PAIR_SAMPLERS = (
    lambda rng, frame, bg: _sample_translation(rng, frame, bg, vertical=False),
    lambda rng, frame, bg: _sample_translation(rng, frame, bg, vertical=True),
    _sample_growing,
    _sample_rotation,
    _sample_appearing,
    _sample_approaching,
)
assert 2 * len(_PAIR_SAMPLERS) == NUM_CLASSES

MAX_DISTRACTORS = get_level(DEFAULT_LEVEL).max_distractors
"""At the full level; see ``Level.max_distractors``."""


def num_main_objects(class_id: int) -> int:
    """How many of a scene's objects (the last ones drawn) perform the class's action."""
    return 2 if class_id // 2 == 5 else 1


def sample_scene(
    class_id: int,
    rng: np.random.Generator,
    frame_size: tuple[int, int] | None = None,
    num_frames: int | None = None,
    level: str | Level = DEFAULT_LEVEL,
) -> Scene:
    """A random scene of class `class_id`: background, distractors, then the main object(s).

    The parameters are drawn for the first class of the pair; odd classes are that draw
    reversed in time, so class 2k+1 is distributed exactly as class 2k played backwards.
    `level` (``levels.LEVELS``) sets the objects' size, the distractors, the background and the
    motion's length; `frame_size` (width, height) and `num_frames` default to the level's.
    """
    paired_class(class_id)  # validates
    level = level if isinstance(level, Level) else get_level(level)
    width, height = level.frame_size if frame_size is None else frame_size
    num_frames = level.num_frames if num_frames is None else num_frames
    frame = _Frame(width, height, scene_duration(num_frames), level.object_scale, level.min_motion_fraction)
    background = _sample_background(rng, frame.size) if level.textured_background else _plain_background()
    count = int(rng.integers(level.max_distractors + 1))
    distractors = [_sample_distractor(rng, frame, background) for _ in range(count)]
    main = _PAIR_SAMPLERS[class_id // 2](rng, frame, background)
    scene = Scene(width, height, frame.duration, background, tuple(distractors + main))
    return scene.time_reversed() if class_id % 2 else scene


def describe_object(obj: SceneObject) -> str:
    """A short name such as "red triangle" (the SSv2 placeholder)."""
    colour = np.asarray(obj.colour, dtype=np.float64)
    name = min(_COLOUR_NAMES, key=lambda n: float(np.linalg.norm(colour - np.asarray(_COLOUR_NAMES[n]))))
    return f"{name} {obj.shape}"
