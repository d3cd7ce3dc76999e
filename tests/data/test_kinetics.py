"""Kinetics csv reading and the Kinetics dataset on real small videos (spec §8.2)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from media_files import level, write_kinetics, write_video
from vov3d.data import Kinetics
from vov3d.data.errors import AnnotationError, EmptySplitError
from vov3d.data.kinetics import read_kinetics_csv


def to_pixels(clip: torch.Tensor, mean=0.45, std=0.225) -> torch.Tensor:
    return (clip * std + mean) * 255


def grey(clip: torch.Tensor) -> np.ndarray:
    """Grey level of each frame, from the bottom-right corner of the crop (outside the square)."""
    return to_pixels(clip)[:, :, -10:, -6:].mean(dim=(0, 2, 3)).numpy()


def test_csv_line_endings_bom_prefix_and_relative_paths(tmp_path):
    csv = tmp_path / "ann" / "train.csv"
    csv.parent.mkdir()
    # BOM, CRLF, a blank line, a space in a path, no final newline
    csv.write_bytes(b"\xef\xbb\xbfa/x.mp4 3\r\n\r\nb y.mp4 7\r\n/abs/z.mp4 0")
    got = read_kinetics_csv(csv)
    base = str(tmp_path / "ann")
    assert got == [(os.path.join(base, "a/x.mp4"), 3), (os.path.join(base, "b y.mp4"), 7), ("/abs/z.mp4", 0)]
    got = read_kinetics_csv(csv, path_prefix="/data/k400")
    assert [p for p, _ in got] == ["/data/k400/a/x.mp4", "/data/k400/b y.mp4", "/abs/z.mp4"]
    csv.write_text("a.mp4,1\nb.mp4,2\n")
    assert [label for _, label in read_kinetics_csv(csv, separator=",")] == [1, 2]


@pytest.mark.parametrize(
    "text,line,match",
    [
        ("a.mp4 1\nb.mp4\nc.mp4 2\n", 2, "expected 'path label'"),
        ("a.mp4 1\n\nb.mp4 cat\n", 3, "label 'cat' is not an integer"),
        ("a.mp4 1\nb.mp4 -1\n", 2, "out of range"),
        ("a.mp4 1\nb.mp4 400\n", 2, r"out of range \[0, 400\)"),
    ],
)
def test_malformed_csv_line_names_file_and_line(tmp_path, text, line, match):
    csv = tmp_path / "train.csv"
    csv.write_text(text)
    with pytest.raises(AnnotationError, match=match) as err:
        read_kinetics_csv(csv, num_classes=400)
    assert str(err.value).startswith(f"{csv}:{line}: ")
    assert err.value.line == line


def test_empty_split_and_missing_csv(tmp_path, small_params):
    (tmp_path / "train.csv").write_text("\n\n")
    with pytest.raises(EmptySplitError, match=r"train\.csv: no videos in the 'train' split"):
        Kinetics(tmp_path, "train", small_params)
    with pytest.raises(AnnotationError, match=r"val\.csv: annotation file not found"):
        Kinetics(tmp_path, "val", small_params)
    with pytest.raises(ValueError, match="split must be one of"):
        Kinetics(tmp_path, "training", small_params)


def test_train_items(kinetics_dir, small_params):
    ds = Kinetics(kinetics_dir, "train", small_params, seed=3)
    assert len(ds) == 5 and ds.views_per_video == 1
    for index in range(len(ds)):
        clip, label, idx, meta = ds[index]
        assert clip.shape == (3, 8, 40, 40) and clip.dtype == torch.float32
        assert label == index == idx == meta["video_index"]
        assert meta["temporal_index"] == -1 and meta["spatial_index"] == -1
        assert meta["failures"] == 0 and meta["error"] == ""
        assert meta["path"].endswith(("mp4", "webm", "avi"))
        # frames come from a random clip of 16 source frames: linspace(start, start + 15, 8)
        start = np.random.default_rng([3, 0, index, 0]).uniform(0, 40 - 16)
        expected = [level(int(v)) for v in torch.linspace(start, start + 15, 8).long()]
        assert np.abs(grey(clip) - expected).max() < 3


def test_test_views_frames_and_crops(kinetics_dir, small_params):
    ds = Kinetics(kinetics_dir, "test", small_params)  # no test.csv here: val.csv is used
    assert ds.annotation_file.name == "val.csv"
    assert len(ds) == 5 * 2 * 3 and ds.views_per_video == 6
    views = [(ds[k][3]["temporal_index"], ds[k][3]["spatial_index"]) for k in range(6)]
    assert views == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    for video in range(5):
        items = [ds[video * 6 + k] for k in range(6)]
        assert all(item[1] == video and item[3]["video_index"] == video for item in items)
        for k, (clip, *_rest) in enumerate(items):
            assert clip.shape == (3, 8, 48, 48)
            view = k // 3  # clip of 16 frames, delta 24, start 12·view
            expected = [level(int(12 * view + 15 * j / 7)) for j in range(8)]
            assert np.abs(grey(clip) - expected).max() < 3
        # the red square (top-left quarter, 32 px wide) fills less of the crop from left to right
        red = [int(((to_pixels(c)[0] > 200) & (to_pixels(c)[2] < 60)).sum()) for c, *_ in items[:3]]
        assert red[0] == pytest.approx(8 * 24 * 32, rel=0.1)
        assert red[1] == pytest.approx(8 * 24 * 24, rel=0.1)
        assert red[2] == pytest.approx(8 * 24 * 16, rel=0.15)
    # test views are fixed: the same whatever the epoch or the seed (nothing random in them)
    other_seed = Kinetics(kinetics_dir, "test", small_params, seed=9)
    assert torch.equal(ds[(0, 7)][0], ds[(4, 7)][0]) and torch.equal(ds[(0, 7)][0], other_seed[(2, 7)][0])


def test_val_clips_are_taken_at_a_random_position(kinetics_dir, small_params):
    # Kinetics val uses the training sampling (spec §8.2): a random clip, redrawn every epoch
    ds = Kinetics(kinetics_dir, "val", small_params, seed=3)
    assert len(ds) == 5 and ds.views_per_video == 1
    firsts = []
    for epoch in range(6):
        clip, label, index, meta = ds[(epoch, 1)]
        assert (label, index, meta["temporal_index"], meta["spatial_index"]) == (1, 1, -1, -1)
        start = np.random.default_rng([3, epoch, 1, 0]).uniform(0, 40 - 16)  # the item's stream, first draw
        expected = [level(int(v)) for v in torch.linspace(start, start + 15, 8).long()]
        assert np.abs(grey(clip) - expected).max() < 3
        firsts.append(expected[0])
    assert max(firsts) - min(firsts) >= level(10) - level(0)  # positions at least 10 frames apart


def test_test_split_reads_test_csv_when_present(tmp_path, small_params):
    write_video(tmp_path / "v.mp4")
    write_kinetics(tmp_path, {"val": [("v.mp4", 1)], "test": [("v.mp4", 2), ("v.mp4", 3)]})
    ds = Kinetics(tmp_path, "test", small_params.replace(num_ensemble_views=4, num_spatial_crops=1))
    assert ds.annotation_file.name == "test.csv"
    assert len(ds) == 2 * 4 and ds.labels == [2, 3]
    assert [ds.view(k)[1:] for k in range(4)] == [(0, 1), (1, 1), (2, 1), (3, 1)]  # one crop: the centre


def test_channel_order(tmp_path, small_params):
    write_video(tmp_path / "v.mp4", colour=(255, 0, 0))
    write_kinetics(tmp_path, {"val": [("v.mp4", 0)]})
    for reverse, red_channel in [(False, 0), (True, 2)]:
        ds = Kinetics(tmp_path, "val", small_params.replace(reverse_input_channel=reverse, random_flip=False))
        corner = to_pixels(ds[0][0])[:, :, :5, :5].mean(dim=(1, 2, 3))
        assert corner[red_channel] > 230 and corner[2 - red_channel] < 30


def test_augmentation_is_seeded_by_seed_epoch_and_index(kinetics_dir, small_params):
    a = Kinetics(kinetics_dir, "train", small_params, seed=0)
    b = Kinetics(kinetics_dir, "train", small_params, seed=0)
    assert torch.equal(a[2][0], b[2][0])
    assert torch.equal(a[(1, 2)][0], b[(1, 2)][0])
    assert not torch.equal(a[(0, 2)][0], a[(1, 2)][0])
    b.set_epoch(1)
    assert torch.equal(b[2][0], a[(1, 2)][0])
    c = Kinetics(kinetics_dir, "train", small_params, seed=1)
    assert not torch.equal(a[2][0], c[2][0])


def test_separator_and_class_count_reach_the_csv_reader_and_its_errors_are_exact(tmp_path, small_params, caplog):
    (tmp_path / "train.csv").write_text("a b.mp4,3\n")
    ds = Kinetics(tmp_path, "train", small_params, separator=",", num_classes=5)
    assert [(v.path, v.label) for v in ds.videos] == [(str(tmp_path / "a b.mp4"), 3)]
    (tmp_path / "train.csv").write_text("a.mp4,3\nb.mp4,7\n")
    with pytest.raises(AnnotationError) as err:
        Kinetics(tmp_path, "train", small_params, separator=",", num_classes=5)
    assert str(err.value) == f"{tmp_path / 'train.csv'}:2: label 7 out of range [0, 5)"
    for text, message in ((",3\n", "expected 'path,label', got ',3'"), ("a.mp4,-1\n", "label -1 out of range >= 0")):
        (tmp_path / "train.csv").write_text(text)
        with pytest.raises(AnnotationError) as err:
            read_kinetics_csv(tmp_path / "train.csv", separator=",")
        assert str(err.value) == f"{tmp_path / 'train.csv'}:1: {message}"
    with pytest.raises(ValueError, match="^the path/label separator must not be empty$"):
        read_kinetics_csv(tmp_path / "train.csv", separator="")
    # the test split falls back to val.csv, and says so
    (tmp_path / "val.csv").write_text("a.mp4 1\n")
    with caplog.at_level("INFO", logger="vov3d.data"):
        assert Kinetics(tmp_path, "test", small_params).annotation_file == tmp_path / "val.csv"
    assert f"{tmp_path / 'test.csv'} not found; testing on {tmp_path / 'val.csv'}" in caplog.text


def test_an_annotation_file_that_is_not_utf8_or_not_a_file_is_named_in_the_error(tmp_path):
    latin = tmp_path / "train.csv"
    latin.write_bytes("caf\u00e9.mp4 1\n".encode("latin-1"))
    with pytest.raises(AnnotationError) as err:
        read_kinetics_csv(latin)
    assert (err.value.path, err.value.line) == (str(latin), 0)
    assert str(err.value).startswith(f"{latin}: not UTF-8 text: 'utf-8' codec can't decode byte 0xe9")
    folder = tmp_path / "val.csv"
    folder.mkdir()
    with pytest.raises(AnnotationError) as err:
        read_kinetics_csv(folder)
    assert (err.value.path, err.value.line) == (str(folder), 0)
    assert str(err.value).startswith(f"{folder}: cannot read: ")
