"""Clip and transform parameters shared by all datasets (spec §7.1, §7.3, §8).

One frozen dataclass replaces the original's reads of the global cfg: a config module maps the
yacs keys (DATA.NUM_FRAMES, DATA.SAMPLING_RATE, ...) onto these fields in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ClipParams:
    """What a clip looks like and how it is augmented.

    Defaults are the Kinetics VoV3D/X3D-M values (spec §7.3: 16×5 frames, 224 train crop, 256
    test crop, 10×3 test views, uniform jitter, flips, RGB).
    """

    num_frames: int = 16  # DATA.NUM_FRAMES (T)
    sampling_rate: int = 5  # DATA.SAMPLING_RATE (Kinetics only, §8.2)
    target_fps: float = 30.0  # DATA.TARGET_FPS (Kinetics only)
    train_jitter_scales: tuple[int, int] = (256, 320)  # DATA.TRAIN_JITTER_SCALES
    train_crop_size: int = 224  # DATA.TRAIN_CROP_SIZE
    test_crop_size: int = 256  # DATA.TEST_CROP_SIZE
    inverse_uniform_sample: bool = False  # DATA.INV_UNIFORM_SAMPLE
    random_flip: bool = True  # DATA.RANDOM_FLIP
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)  # DATA.MEAN
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)  # DATA.STD
    reverse_input_channel: bool = False  # DATA.REVERSE_INPUT_CHANNEL
    num_ensemble_views: int = 10  # TEST.NUM_ENSEMBLE_VIEWS
    num_spatial_crops: int = 3  # TEST.NUM_SPATIAL_CROPS

    def __post_init__(self) -> None:
        # Accept lists (as yacs gives them) but store tuples so the object stays hashable.
        for name in ("train_jitter_scales", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = []
        for name in ("num_frames", "sampling_rate", "train_crop_size", "test_crop_size",
                     "num_ensemble_views", "num_spatial_crops"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive int, got {value!r}")
        if not self.target_fps > 0:
            problems.append(f"target_fps must be > 0, got {self.target_fps!r}")
        if len(self.train_jitter_scales) != 2:
            problems.append(f"train_jitter_scales must be (min, max), got {self.train_jitter_scales!r}")
        else:
            lo, hi = self.train_jitter_scales
            if not 0 < lo <= hi:
                problems.append(f"train_jitter_scales must satisfy 0 < min <= max, got {self.train_jitter_scales!r}")
            elif self.train_crop_size > lo:
                problems.append(
                    f"train_crop_size {self.train_crop_size} is larger than the smallest jitter scale {lo}"
                )
        for name in ("mean", "std"):
            if len(getattr(self, name)) != 3:
                problems.append(f"{name} needs 3 values (one a channel), got {getattr(self, name)!r}")
        if any(s <= 0 for s in self.std):
            problems.append(f"std values must be > 0, got {self.std!r}")
        if self.num_spatial_crops not in (1, 3):
            problems.append(f"num_spatial_crops must be 1 or 3, got {self.num_spatial_crops!r}")
        if problems:
            raise ValueError("invalid ClipParams: " + "; ".join(problems))

    @property
    def num_test_views(self) -> int:
        """Clips per video in the test split: NUM_ENSEMBLE_VIEWS × NUM_SPATIAL_CROPS (§8.2)."""
        return self.num_ensemble_views * self.num_spatial_crops

    def replace(self, **changes: Any) -> "ClipParams":
        """A copy with some fields changed."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"unknown ClipParams fields: {sorted(unknown)}")
        values.update(changes)
        return ClipParams(**values)


def check_split(split: str) -> str:
    """Return `split` if it is one of train/val/test, else raise a ValueError naming them."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


KINETICS_PARAMS = ClipParams()
"""Kinetics VoV3D/X3D-M values (spec §7.3): 16×5, jitter 256–320, crops 224/256, 10×3 views, flip, RGB."""

SOMETHING_PARAMS = ClipParams(
    sampling_rate=8,
    inverse_uniform_sample=True,
    random_flip=False,
    reverse_input_channel=True,
    num_ensemble_views=2,
    num_spatial_crops=3,
)
"""Something-Something VoV3D values (spec §7.3): 16 frames, inverse-uniform jitter, no flip, RGB, 2×3 views."""
