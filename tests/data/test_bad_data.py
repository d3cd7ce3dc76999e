"""Bad data with real broken files: logged with the path, counted, replaced in training, reported
at test time; malformed annotations and empty splits are clear errors (issue 3, item 5)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from media_files import write_frame_folder, write_frame_list, write_kinetics, write_ssv2_annotations, write_video
from vov3d.data import Kinetics, SomethingSomething, SOMETHING_PARAMS
from vov3d.data.errors import DataError, MediaError

BAD = ["missing.mp4", "garbage.mp4", "truncated.mp4"]


@pytest.fixture(scope="module")
def broken_kinetics(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    good = [write_video(root / f"good{i}.mp4", colour=(0, 255, 0)) for i in range(2)]
    (root / "garbage.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    data = good[0].read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    rows = [("good0.mp4", 0), ("missing.mp4", 1), ("garbage.mp4", 2), ("truncated.mp4", 3), ("good1.mp4", 4)]
    write_kinetics(root, {"train": rows, "test": rows})
    return root


def test_training_replaces_bad_videos_and_logs_their_paths(broken_kinetics, small_params, caplog):
    ds = Kinetics(broken_kinetics, "train", small_params)
    with caplog.at_level(logging.WARNING, logger="vov3d.data"):
        items = [ds[i] for i in range(len(ds))]
    for index, (clip, label, idx, meta) in enumerate(items):
        assert idx == index and clip.shape == (3, 8, 40, 40) and torch.isfinite(clip).all()
        if index in (0, 4):
            assert meta["failures"] == 0 and meta["error"] == "" and label == index
            continue
        bad = BAD[index - 1]
        # replaced by a good video: its label and path come with it
        assert meta["failures"] >= 1 and meta["video_index"] in (0, 4) and label == meta["video_index"]
        assert meta["path"].endswith(f"good{label // 4}.mp4")
        assert bad in meta["error"]
        assert any(bad in r.getMessage() and "replaced" in r.getMessage() for r in caplog.records)
    assert ds.failure_count >= 3
    # deterministic replacement
    assert torch.equal(ds[2][0], items[2][0]) and ds[2][3] == items[2][3]


def test_a_bad_training_video_is_replaced_by_any_other_video_never_itself(tmp_path, small_params):
    good = [write_video(tmp_path / f"good{i}.mp4") for i in range(2)]
    write_kinetics(tmp_path / "two", {"train": [(str(tmp_path / "missing.mp4"), 0), (str(good[0]), 1)]})
    two = Kinetics(tmp_path / "two", "train", small_params)
    for epoch in range(24):  # the only other video: one failure, then video 1, every time
        _, label, _, meta = two[(epoch, 0)]
        assert (meta["failures"], meta["video_index"], label) == (1, 1, 1)
    rows = [(str(tmp_path / "missing.mp4"), 0), (str(good[0]), 1), (str(good[1]), 2)]
    write_kinetics(tmp_path / "three", {"train": rows})
    three = Kinetics(tmp_path / "three", "train", small_params)
    chosen = []
    for epoch in range(24):
        _, label, _, meta = three[(epoch, 0)]
        assert meta["failures"] == 1 and label == meta["video_index"]
        chosen.append(meta["video_index"])
    assert set(chosen) == {1, 2}  # a random other video, not always the same neighbour
    assert 6 <= chosen.count(1) <= 18


def test_test_split_reports_bad_videos(broken_kinetics, small_params, caplog):
    ds = Kinetics(broken_kinetics, "test", small_params)
    assert len(ds) == 5 * 6
    with caplog.at_level(logging.WARNING, logger="vov3d.data"):
        for video in range(5):
            clip, label, index, meta = ds[video * 6 + 4]
            assert label == video and meta["video_index"] == video
            if video in (0, 4):
                assert meta["error"] == "" and clip.abs().sum() > 0
            else:
                assert clip.shape == (3, 8, 48, 48) and not clip.any()
                assert meta["failures"] == 1 and BAD[video - 1] in meta["error"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert all(name in messages for name in BAD)
    assert "not found" in ds[6][3]["error"]
    assert "cannot open" in ds[12][3]["error"] and "cannot open" in ds[18][3]["error"]


def test_raise_policy_and_all_bad_data(broken_kinetics, small_params, tmp_path):
    ds = Kinetics(broken_kinetics, "train", small_params, on_error="raise")
    with pytest.raises(MediaError, match="missing.mp4: file not found"):
        ds[1]
    write_kinetics(tmp_path, {"train": [(str(broken_kinetics / name), 0) for name in BAD]})
    ds = Kinetics(tmp_path, "train", small_params)
    with pytest.raises(DataError, match="10 samples in a row failed"):
        ds[0]
    with pytest.raises(ValueError, match="on_error"):
        Kinetics(tmp_path, "train", small_params, on_error="ignore")


def test_corrupt_jpeg_and_video_missing_from_frame_list(tmp_path, caplog):
    classes = ["Holding something", "Pushing something"]
    write_ssv2_annotations(tmp_path, classes, "something-something-v2-train.json", [("1", 0), ("2", 1), ("3", 1)])
    frames = {vid: [f"f/{p}" for p in write_frame_folder(tmp_path / "f", vid, 20)] for vid in ("1", "2")}
    # frames 5..14 of video 2 are garbage after a JPEG header: segments 2-5 of 8 lie inside them
    for i in range(5, 15):
        broken = tmp_path / frames["2"][i]
        broken.write_bytes(broken.read_bytes()[:30] + bytes(range(256)) * 4)
    write_frame_list(tmp_path / "train.csv", frames)  # video 3 has no frames listed
    params = SOMETHING_PARAMS.replace(num_frames=8, train_jitter_scales=(48, 56), train_crop_size=40, test_crop_size=48)
    with caplog.at_level(logging.WARNING, logger="vov3d.data"):
        ds = SomethingSomething(tmp_path, "train", params, version=2)
        assert (
            f"1 of 3 videos of {tmp_path / 'something-something-v2-train.json'} have no frames in "
            f"{tmp_path / 'train.csv'} (first: 3); they count as bad data"
        ) in caplog.text
        good, bad_jpeg, unlisted = ds[0], ds[1], ds[2]
    assert good[3]["failures"] == 0
    assert bad_jpeg[3]["failures"] >= 1 and "corrupt JPEG" in bad_jpeg[3]["error"]
    assert "f/2/2_0000" in bad_jpeg[3]["error"]
    assert bad_jpeg[3]["video_index"] == 0 and bad_jpeg[1] == 0  # replaced by the good video
    assert "video 3 has no frames in" in unlisted[3]["error"]
    assert "f/2/2_0000" in caplog.text
    # at val/test time the same videos are reported (the frame list of val/test is val.csv)
    write_ssv2_annotations(tmp_path, classes, "something-something-v2-validation.json", [("1", 0), ("2", 1)])
    write_frame_list(tmp_path / "val.csv", frames)
    test = SomethingSomething(tmp_path, "test", params, version=2)
    errors = [test[k][3]["error"] for k in range(len(test))]
    assert errors[:6] == [""] * 6
    assert all("corrupt JPEG" in e and "f/2/2_0000" in e for e in errors[6:])


def test_data_errors_cross_worker_processes_whole():
    import pickle

    from vov3d.data.errors import AnnotationError

    for err in (AnnotationError("/d/train.csv", 4, "label 'x' is not an integer"), MediaError("/d/v.mp4", "file not found")):
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err) and str(copy) == str(err) and copy.path == err.path
        assert copy.reason == err.reason == str(err).split(": ", 1)[1].split(": ", 1)[-1]
    assert str(AnnotationError("/d/train.csv", 4, "bad")) == "/d/train.csv:4: bad"
    assert str(AnnotationError("/d/train.csv", 1, "bad")) == "/d/train.csv:1: bad"
    assert str(AnnotationError("/d/train.csv", 0, "bad")) == "/d/train.csv: bad"



def test_a_reported_bad_item_has_the_shape_of_its_split(broken_kinetics, small_params):
    train = Kinetics(broken_kinetics, "train", small_params, on_error="report")
    clip, label, _, meta = train[1]  # missing.mp4
    assert clip.shape == (3, 8, 40, 40) and not clip.any() and label == 1 and "not found" in meta["error"]
    test = Kinetics(broken_kinetics, "test", small_params)
    assert test[6][0].shape == (3, 8, 48, 48)


def test_bad_samples_are_counted_once_each_and_logged_with_index_path_split_and_error(broken_kinetics, small_params,
                                                                                       caplog):
    ds = Kinetics(broken_kinetics, "test", small_params)
    missing = str(broken_kinetics / "missing.mp4")
    with caplog.at_level(logging.WARNING, logger="vov3d.data"):
        _, _, _, meta = ds[6]  # the first view of missing.mp4
    assert ds.failure_count == 1 and meta["error"] == f"{missing}: file not found"
    assert [r.getMessage() for r in caplog.records] == [
        f"bad sample 6 ({missing}) in the test split: {missing}: file not found"]
    caplog.clear()
    train = Kinetics(broken_kinetics, "train", small_params)
    with caplog.at_level(logging.WARNING, logger="vov3d.data"):
        _, _, _, meta = train[(0, 1)]
    assert train.failure_count == meta["failures"] == len(caplog.records)
    assert caplog.records[0].getMessage() == (
        f"bad sample 1 ({missing}) in the train split, replaced by another video: {missing}: file not found")
    assert meta["error"].split(" | ")[0] == f"{missing}: file not found"
    assert meta["error"].count(" | ") == meta["failures"] - 1


def test_an_error_other_than_a_media_error_is_reported_with_the_path_and_its_type(broken_kinetics, small_params):
    class Failing(Kinetics):
        def load_frames(self, video, temporal, rng):
            raise RuntimeError("the decoder ran out of memory")

    ds = Failing(broken_kinetics, "test", small_params)
    good = str(broken_kinetics / "good0.mp4")
    assert ds[0][3]["error"] == f"{good}: RuntimeError: the decoder ran out of memory"
    train = Failing(broken_kinetics, "train", small_params)
    with pytest.raises(DataError) as err:
        train[0]
    lines = str(err.value).splitlines()
    assert lines[0] == ("10 samples in a row failed in the train split (index 0); "
                        "the data or the pipeline is broken. Errors:")
    assert len(lines) == 11 and lines[1] == f"  {good}: RuntimeError: the decoder ran out of memory"


def test_items_are_indexed_like_a_sequence(broken_kinetics, small_params):
    ds = Kinetics(broken_kinetics, "test", small_params)
    assert len(ds) == 30
    assert ds[-1][2] == 29 and ds[-30][2] == 0 and torch.equal(ds[-1][0], ds[29][0])
    for bad, shown in ((30, 30), (-31, -1)):  # a negative index counts from the end
        with pytest.raises(IndexError, match=f"^index {shown} out of range for 30 items$"):
            ds[bad]


@pytest.mark.parametrize("shape", [(7, 48, 64, 3), (8, 48, 64, 4), (8, 48, 64)])
def test_frames_of_the_wrong_shape_are_bad_data_naming_the_video(broken_kinetics, small_params, shape):
    class Wrong(Kinetics):
        def load_frames(self, video, temporal, rng):
            return np.zeros(shape, np.uint8)

    error = Wrong(broken_kinetics, "test", small_params)[0][3]["error"]
    assert error == f"{broken_kinetics / 'good0.mp4'}: expected (8, H, W, 3) frames, got {shape}"
