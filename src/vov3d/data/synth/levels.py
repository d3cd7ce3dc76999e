"""Difficulty levels of the synthetic dataset: how hard the same 12 temporal classes are to see.

Every level keeps the rules of docs/synthetic_data.md (class 2k+1 is class 2k played backwards,
exactly; the nuisances have no arrow of time), so at every level only the order of the frames tells a
pair apart. A level changes what surrounds the action: the frame size and length it is rendered at,
the size of the main objects, the distractors, the background and how long the motion lasts.

``full`` is the dataset as it has always been written (its files are byte-identical to earlier
versions); ``easy`` is rendered at a CNN's training size for a CPU demo (the main job of
``scripts/run.sh``); ``medium`` lies between.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    """The knobs of one difficulty level (docs/synthetic_data.md, "Difficulty levels")."""

    name: str
    frame_size: tuple[int, int]
    """Default (width, height) of the rendered frames."""
    num_frames: int
    """Default number of 30 fps frames (5k+1)."""
    object_scale: float
    """Factor on the main objects' radii (the full level's ranges times this)."""
    max_distractors: int
    """Each clip has 0..max_distractors small moving distractors."""
    textured_background: bool
    """Textured background of random colours with grain (full), or plain mid grey (no texture, no grain)."""
    min_motion_fraction: float
    """The main action lasts at least this fraction of the clip (and at most all of it)."""


LEVELS: dict[str, Level] = {
    "full": Level("full", (160, 120), 91, 1.0, 3, True, 0.4),
    "medium": Level("medium", (64, 48), 31, 1.25, 1, True, 0.55),
    "easy": Level("easy", (32, 32), 16, 2.0, 0, False, 0.8),
}
"""The levels by name; ``full`` is the default everywhere."""

LEVEL_NAMES = tuple(LEVELS)
DEFAULT_LEVEL = "full"


def get_level(name: str) -> Level:
    """The level called `name`; a ValueError naming the accepted levels otherwise."""
    if name not in LEVELS:
        raise ValueError(f"unknown level {name!r}; accepted: {', '.join(LEVEL_NAMES)}")
    return LEVELS[name]
