"""The built-in synthetic temporal dataset: ``vov3d data synth`` (docs/synthetic_data.md).

Writes real encoded videos and annotation files in the layouts the Kinetics (spec §8.2) and
Something-Something V1/V2 (spec §8.3) readers expect. The 12 classes come in 6 pairs whose
members are exact time reversals of each other (class 2k+1 = class 2k played backwards), so
a single frame or an unordered bag of frames cannot tell the members of a pair apart.

    from vov3d.data.synth import generate_dataset
    summary = generate_dataset("data/synth", formats="all", seed=0)
    summary = generate_dataset("data/synth_easy", level="easy")  # 32x32, 16 frames: the CPU demo's level

One concern a module: ``levels`` (difficulty levels), ``scenes`` (what happens in a video of each class), ``render`` (exact,
time-reversible drawing), ``frame_times`` (the formats' frame grids), ``encoding`` (videos and
JPEG files), ``annotations`` (the formats' annotation files) and ``generate`` (the driver).
"""

from __future__ import annotations

from vov3d.data.synth.annotations import SS_FRAME_LIST_HEADER
from vov3d.data.synth.frame_times import (
    KINETICS_FPS,
    SS_EXTRACTED_FPS,
    SS_VIDEO_FPS,
    extracted_frame_sources,
    frame_ticks,
    scene_duration,
)
from vov3d.data.synth.generate import (
    DEFAULT_SPLIT_SIZES,
    FORMAT_CHOICES,
    FORMATS,
    IN_PROGRESS_NAME,
    MANIFEST_NAME,
    SPLITS,
    generate_dataset,
    split_labels,
    video_id,
    video_rng,
)
from vov3d.data.synth.levels import DEFAULT_LEVEL, LEVEL_NAMES, LEVELS, Level, get_level
from vov3d.data.synth.scenes import (
    CLASS_NAMES,
    CLASS_TEMPLATES,
    DEFAULT_FRAME_SIZE,
    DEFAULT_NUM_FRAMES,
    MAX_DISTRACTORS,
    NUM_CLASSES,
    describe_object,
    num_main_objects,
    paired_class,
    sample_scene,
)

__all__ = [
    "CLASS_NAMES",
    "CLASS_TEMPLATES",
    "DEFAULT_FRAME_SIZE",
    "DEFAULT_LEVEL",
    "DEFAULT_NUM_FRAMES",
    "DEFAULT_SPLIT_SIZES",
    "FORMATS",
    "FORMAT_CHOICES",
    "IN_PROGRESS_NAME",
    "KINETICS_FPS",
    "LEVELS",
    "LEVEL_NAMES",
    "Level",
    "MANIFEST_NAME",
    "MAX_DISTRACTORS",
    "NUM_CLASSES",
    "SPLITS",
    "SS_EXTRACTED_FPS",
    "SS_FRAME_LIST_HEADER",
    "SS_VIDEO_FPS",
    "describe_object",
    "extracted_frame_sources",
    "frame_ticks",
    "generate_dataset",
    "get_level",
    "num_main_objects",
    "paired_class",
    "sample_scene",
    "scene_duration",
    "split_labels",
    "video_id",
    "video_rng",
]
