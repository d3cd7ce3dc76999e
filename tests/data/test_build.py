"""vov3d.data.build_dataset: one name per format, the format's defaults, a clear error otherwise."""

from __future__ import annotations

import json

import pytest

from media_files import write_frame_folder, write_frame_list, write_video
from vov3d.data import (
    DATASET_FORMATS,
    KINETICS_PARAMS,
    SOMETHING_PARAMS,
    Kinetics,
    SomethingSomething,
    build_dataset,
)


@pytest.fixture(scope="module")
def something_root(tmp_path_factory):
    """SSv1 and SSv2 annotation files for one video "7" of class 1; frames and a webm of it."""
    root = tmp_path_factory.mktemp("something")
    classes = ["Holding something", "Pushing something"]
    (root / "something-something-v1-labels.csv").write_text("\n".join(classes) + "\n")
    (root / "something-something-v1-train.csv").write_text("7;Pushing something\n")
    (root / "something-something-v2-labels.json").write_text(json.dumps({c: str(i) for i, c in enumerate(classes)}))
    (root / "something-something-v2-train.json").write_text(json.dumps([{"id": "7", "template": "Pushing [something]"}]))
    write_frame_list(root / "train.csv", {"7": [f"frames/{p}" for p in write_frame_folder(root / "frames", "7", 4)]})
    write_video(root / "videos" / "7.webm", "vp8", num_frames=10)
    return root


def test_kinetics_format_gives_kinetics_with_its_default_params(kinetics_dir):
    ds = build_dataset("kinetics", kinetics_dir, "train", seed=3)
    assert type(ds) is Kinetics and ds.params == KINETICS_PARAMS and ds.seed == 3
    assert ds.on_error == "replace" and ds.num_videos == 5


def test_params_and_on_error_are_passed_through(kinetics_dir, small_params):
    ds = build_dataset("kinetics", kinetics_dir, "val", params=small_params, on_error="raise")
    assert ds.params is small_params and ds.on_error == "raise"


@pytest.mark.parametrize(
    "fmt, version, source",
    [("ssv1", 1, "frames"), ("ssv2", 2, "frames"), ("ssv2-video", 2, "video")],
)
def test_something_formats(something_root, fmt, version, source, small_params):
    ds = build_dataset(fmt, something_root, "train")
    assert type(ds) is SomethingSomething and ds.params == SOMETHING_PARAMS and ds.seed == 0
    assert build_dataset(fmt, something_root, "train", params=small_params).params is small_params
    assert (ds.version, ds.source, ds.labels) == (version, source, [1])
    if source == "video":
        assert ds.videos[0].path == str(something_root / "videos" / "7.webm")
    else:
        assert len(ds.videos[0].frames) == 4


def test_path_prefix_reaches_the_dataset(kinetics_dir, tmp_path):
    (tmp_path / "train.csv").write_text("h264.mp4 0\n")
    ds = build_dataset("kinetics", tmp_path, "train", path_prefix=kinetics_dir / "videos")
    assert ds.videos[0].path == str(kinetics_dir / "videos" / "h264.mp4")


def test_unknown_format_names_the_choices(kinetics_dir):
    assert DATASET_FORMATS == ("kinetics", "ssv1", "ssv2", "ssv2-video")
    with pytest.raises(ValueError, match="'ssv3'.*kinetics, ssv1, ssv2, ssv2-video"):
        build_dataset("ssv3", kinetics_dir, "train")
