"""Fixtures of the data tests: small datasets written to temporary folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_files import write_kinetics, write_video
from vov3d.data import ClipParams

# Small clips of tiny videos keep the suite fast: 8 frames, short side jittered in [48, 56].
SMALL = ClipParams(
    num_frames=8,
    sampling_rate=2,
    target_fps=30,
    train_jitter_scales=(48, 56),
    train_crop_size=40,
    test_crop_size=48,
    num_ensemble_views=2,
    num_spatial_crops=3,
)


@pytest.fixture(scope="session")
def small_params() -> ClipParams:
    return SMALL


@pytest.fixture(scope="session")
def kinetics_dir(tmp_path_factory) -> Path:
    """Five good videos (h264, mpeg4, vp8, vp9 webm, avi), labels 0..4, listed in train/val csv."""
    root = tmp_path_factory.mktemp("kinetics")
    rows = []
    kinds = [("h264", ".mp4"), ("mpeg4", ".mp4"), ("vp8", ".webm"), ("vp9", ".webm"), ("avi", ".avi")]
    for label, (name, ext) in enumerate(kinds):
        write_video(root / "videos" / f"{name}{ext}", name)
        rows.append((f"videos/{name}{ext}", label))
    write_kinetics(root, {"train": rows, "val": rows})
    return root
