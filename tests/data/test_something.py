"""Something-Something V1/V2: label files, frame lists, JPEG frames and webm videos (spec §8.3)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from media_files import (
    encode_h264,
    frame_stack,
    level,
    write_frame_folder,
    write_frame_list,
    write_ssv2_annotations,
    write_video,
)
from vov3d.data import SOMETHING_PARAMS, SomethingSomething
from vov3d.data.errors import AnnotationError, EmptySplitError, MediaError

CLASSES = [
    "Holding something",
    "Pushing something from left to right",
    "Putting something, something and something on the table",
]
# Segments of a 40-frame video for 8 frames (spec §8.3): seg = 39/8, bounds round(seg*i) half to even.
BOUNDS_40_8 = [(0, 5), (5, 10), (10, 15), (15, 20), (20, 24), (24, 29), (29, 34), (34, 39)]
PARAMS = SOMETHING_PARAMS.replace(num_frames=8, train_jitter_scales=(48, 56), train_crop_size=40, test_crop_size=48)
TRAIN = [("101", 0), ("102", 2)]
VAL = [("201", 1), ("202", 2)]


def pixels(clip: torch.Tensor) -> torch.Tensor:
    return clip * 0.225 * 255 + 0.45 * 255


def grey(clip: torch.Tensor) -> np.ndarray:
    return pixels(clip)[:, :, -10:, -6:].mean(dim=(0, 2, 3)).numpy()


def write_frames_and_lists(root, num_frames=40):
    lists = {}
    for split, rows in [("train", TRAIN), ("val", VAL)]:
        lists[split] = {
            vid: [f"frames/{p}" for p in write_frame_folder(root / "frames", vid, num_frames)] for vid, _ in rows
        }
        write_frame_list(root / f"{split}.csv", lists[split], newline="\r\n" if split == "val" else "\n")


@pytest.fixture(scope="module")
def ssv1(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssv1")
    # CRLF label file whose last line has no newline; a class name with commas
    (root / "something-something-v1-labels.csv").write_bytes("\r\n".join(CLASSES).encode())
    (root / "something-something-v1-train.csv").write_text("".join(f"{v};{CLASSES[c]}\n" for v, c in TRAIN))
    val_lines = "\r\n".join(f"{v};{CLASSES[c]}" for v, c in VAL)
    (root / "something-something-v1-validation.csv").write_bytes(val_lines.encode())
    write_frames_and_lists(root)
    return root


@pytest.fixture(scope="module")
def ssv2(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssv2")
    write_ssv2_annotations(root, CLASSES, "something-something-v2-train.json", TRAIN)
    write_ssv2_annotations(root, CLASSES, "something-something-v2-validation.json", VAL)
    write_frames_and_lists(root)
    for vid, _ in TRAIN + VAL:
        write_video(root / "videos" / f"{vid}.webm", "vp9")
    return root


def test_ssv1_labels_and_frames(ssv1):
    train = SomethingSomething(ssv1, "train", PARAMS, version=1)
    assert train.labels == [0, 2] and len(train) == 2
    assert train.class_names == CLASSES
    val = SomethingSomething(ssv1, "val", PARAMS, version=1)
    assert val.labels == [1, 2]
    for index in range(2):
        clip, label, _, meta = train[index]
        assert clip.shape == (3, 8, 40, 40) and label == TRAIN[index][1]
        assert meta["path"].endswith(f"frames/{TRAIN[index][0]}")
        # train: one random frame from each segment
        for g, (s, e) in zip(grey(clip), BOUNDS_40_8):
            assert level(s) - 3 < g < level(e) + 3
        clip, *_, meta = val[index]
        assert meta["temporal_index"] == 0 and meta["spatial_index"] == -1
        # val: the segment centres
        assert np.abs(grey(clip) - [level(i) for i in (2, 7, 12, 17, 22, 26, 31, 36)]).max() < 3


def test_ssv1_test_views_are_deterministic(ssv1):
    test = SomethingSomething(ssv1, "test", PARAMS, version=1)
    assert len(test) == 2 * 2 * 3 and test.views_per_video == 6
    # view v of 2 in segment (s, e): s + (e - s) * (2v + 1) // 4
    frames_of_view = [(1, 6, 11, 16, 21, 25, 30, 35), (3, 8, 13, 18, 23, 27, 32, 37)]
    for k in range(6):
        clip, label, index, meta = test[6 + k]
        assert (meta["video_index"], meta["temporal_index"], meta["spatial_index"]) == (1, k // 3, k % 3)
        assert clip.shape == (3, 8, 48, 48) and label == 2
        assert np.abs(grey(clip) - [level(i) for i in frames_of_view[k // 3]]).max() < 3
        assert torch.equal(clip, test[(5, 6 + k)][0])  # fixed views: the same in every epoch
    single = SomethingSomething(ssv1, "test", PARAMS.replace(num_ensemble_views=1, num_spatial_crops=1), version=1)
    assert len(single) == 2 and single[0][3]["spatial_index"] == 1  # the centre, not top-left


def test_channel_order_follows_the_original_bgr_reader(ssv1):
    for reverse, red_channel in [(True, 0), (False, 2)]:
        test = SomethingSomething(ssv1, "test", PARAMS.replace(reverse_input_channel=reverse), version=1)
        corner = pixels(test[0][0])[:, :, :5, :5].mean(dim=(1, 2, 3))  # crop 0: the red top-left square
        assert corner[red_channel] > 230 and corner[2 - red_channel] < 30


def test_ssv2_frames_and_webm_give_the_same_clips(ssv2):
    frames = SomethingSomething(ssv2, "test", PARAMS, version=2, source="frames")
    videos = SomethingSomething(ssv2, "test", PARAMS, version=2, source="video", video_dir=ssv2 / "videos")
    assert frames.labels == videos.labels == [1, 2]
    assert len(frames) == len(videos) == 12
    for k in range(0, 12, 5):
        a, b = frames[k], videos[k]
        assert b[3]["path"] == str(ssv2 / "videos" / f"{VAL[k // 6][0]}.webm")
        assert a[1] == b[1] and a[3]["spatial_index"] == b[3]["spatial_index"]
        assert np.abs(grey(a[0]) - grey(b[0])).max() < 3
    by_prefix = SomethingSomething(ssv2, "train", PARAMS, version=2, source="video", path_prefix=ssv2 / "videos")
    assert by_prefix[0][0].shape == (3, 8, 40, 40) and by_prefix[0][3]["error"] == ""
    found = SomethingSomething(ssv2, "train", PARAMS, version=2, source="video")  # data_dir/videos by default
    assert found[1][3]["path"] == str(ssv2 / "videos" / "102.webm") and found[1][3]["error"] == ""


def test_webm_at_12_fps_is_sampled_on_the_30_fps_extraction_grid(tmp_path):
    write_ssv2_annotations(tmp_path, CLASSES, "something-something-v2-validation.json", [("7", 0)])
    write_video(tmp_path / "7.webm", "vp8", num_frames=30, fps=12)  # 2.5 s -> 75 frames at 30 fps
    params = PARAMS.replace(train_crop_size=48, train_jitter_scales=(48, 48))
    ds = SomethingSomething(tmp_path, "val", params, source="video")
    centres = [4, 13, 23, 32, 41, 51, 60, 69]  # of the segments of 75 frames: 0, 9, 18, 28, 37, 46, 56, 65, 74
    expected = [level(int(np.floor(j * 12 / 30 + 0.5))) for j in centres]  # the 12 fps frame shown at j/30 s
    assert np.abs(grey(ds[0][0]) - expected).max() < 3


def test_ssv1_unknown_class_names_file_and_line(tmp_path):
    (tmp_path / "something-something-v1-labels.csv").write_text("\n".join(CLASSES) + "\n")
    (tmp_path / "something-something-v1-train.csv").write_text("1;Holding something\n2;Holding nothing\n")
    with pytest.raises(AnnotationError, match=r"v1-train\.csv:2: class 'Holding nothing' is not in the label file"):
        SomethingSomething(tmp_path, "train", PARAMS, version=1)
    (tmp_path / "something-something-v1-train.csv").write_text("1;Holding something\n2 Holding something\n")
    with pytest.raises(AnnotationError, match=r"v1-train\.csv:2: expected 'video_id;class name'"):
        SomethingSomething(tmp_path, "train", PARAMS, version=1)


def test_malformed_frame_list_row(ssv1, tmp_path):
    for name in ["something-something-v1-labels.csv", "something-something-v1-train.csv"]:
        shutil.copy(ssv1 / name, tmp_path / name)
    (tmp_path / "train.csv").write_text(
        "original_vido_id video_id frame_id path labels\n101 0 0 frames/a.jpg 0\n101 0 1 frames/b.jpg\n"
    )
    with pytest.raises(AnnotationError, match=r"train\.csv:3: expected 5 space-separated columns"):
        SomethingSomething(tmp_path, "train", PARAMS, version=1)


def test_ssv2_bad_json(tmp_path):
    write_ssv2_annotations(tmp_path, CLASSES, "something-something-v2-train.json", TRAIN)
    path = tmp_path / "something-something-v2-train.json"
    entries = json.loads(path.read_text())
    entries[1]["template"] = "Dancing with [something]"
    path.write_text(json.dumps(entries, indent=1))
    with pytest.raises(AnnotationError, match=r"v2-train\.json: entry 1 \(id 102\): template 'Dancing with something'"):
        SomethingSomething(tmp_path, "train", PARAMS, source="video")
    path.write_text('[\n {"id": "1",\n  "template": "Holding something"\n')
    with pytest.raises(AnnotationError, match=r"v2-train\.json:4: invalid JSON"):
        SomethingSomething(tmp_path, "train", PARAMS, source="video")
    path.write_text("[]")
    with pytest.raises(EmptySplitError, match=r"v2-train\.json: no videos in the 'train' split"):
        SomethingSomething(tmp_path, "train", PARAMS, source="video")


# --- label files: what the readers accept and how they refuse the rest (found by mutation testing)


def test_ssv1_names_may_be_quoted_and_the_id_ends_at_the_first_semicolon(tmp_path):
    from vov3d.data.something import read_ssv1_annotations, read_ssv1_labels

    labels_file = tmp_path / "labels.csv"
    labels_file.write_text('"Holding something"\nPutting something; then something\n"Pushing "it""\n')
    labels = read_ssv1_labels(labels_file)
    assert labels == {"Holding something": 0, "Putting something; then something": 1, 'Pushing "it"': 2}
    split = tmp_path / "train.csv"
    split.write_text('7;"Holding something"\n8;Putting something; then something\n9;Pushing "it"\n')
    assert read_ssv1_annotations(split, labels) == [("7", 0), ("8", 1), ("9", 2)]


def test_ssv1_label_file_errors_name_the_file(tmp_path):
    from vov3d.data.something import read_ssv1_labels

    path = tmp_path / "labels.csv"
    path.write_text("Holding something\nPushing something\nHolding something\n")
    with pytest.raises(AnnotationError, match=r"labels\.csv:3: class 'Holding something' is listed twice") as err:
        read_ssv1_labels(path)
    assert (err.value.path, err.value.line) == (str(path), 3)
    path.write_text("\n\n")
    with pytest.raises(AnnotationError, match=r"labels\.csv: no class names in the file$") as err:
        read_ssv1_labels(path)
    assert err.value.path == str(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ('["Holding something"]', "expected a non-empty JSON object"),
        ("{}", "expected a non-empty JSON object"),
        ('{"Holding something": "zero"}', "class id 'zero' of 'Holding something' is not an integer"),
        ('{"Holding something": null}', "class id None of 'Holding something' is not an integer"),
    ],
)
def test_ssv2_label_file_errors(tmp_path, text, message):
    from vov3d.data.something import read_ssv2_labels

    path = tmp_path / "something-something-v2-labels.json"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=message) as err:
        read_ssv2_labels(path)
    assert err.value.path == str(path)
    path.write_text('{"Holding something": "3", "Pushing something": 4}')
    assert read_ssv2_labels(path) == {"Holding something": 3, "Pushing something": 4}


def test_the_official_archive_folder_is_preferred_for_webm(ssv2, tmp_path):
    for name in ["something-something-v2-labels.json", "something-something-v2-train.json"]:
        shutil.copy(ssv2 / name, tmp_path / name)
    (tmp_path / "videos").mkdir()
    (tmp_path / "20bn-something-something-v2").mkdir()
    ds = SomethingSomething(tmp_path, "train", PARAMS, source="video")
    assert ds.videos[0].path == str(tmp_path / "20bn-something-something-v2" / "101.webm")


@pytest.mark.parametrize(
    "entries, message",
    [
        ({"id": "1", "template": "Holding [something]"}, r"v2-train\.json: expected a JSON list of"),
        ([{"id": "1", "template": "Holding [something]"}, {"template": "Holding [something]"}],
         r"v2-train\.json: entry 1: expected an object with 'id' and 'template', got \{'template'"),
        ([{"id": "1"}], r"v2-train\.json: entry 0: expected an object with 'id' and 'template', got \{'id': '1'\}"),
        (["1"], r"v2-train\.json: entry 0: expected an object with 'id' and 'template', got '1'"),
    ],
)
def test_ssv2_split_file_errors_name_the_file_and_entry(tmp_path, entries, message):
    from vov3d.data.something import read_ssv2_annotations

    path = tmp_path / "something-something-v2-train.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(AnnotationError, match=message) as err:
        read_ssv2_annotations(path, {"Holding something": 0})
    assert (err.value.path, err.value.line) == (str(path), 0)


def test_frame_lists_with_and_without_a_header(tmp_path):
    from vov3d.data.something import read_frame_list

    path = tmp_path / "train.csv"
    for header in ("original_vido_id video_id frame_id path labels\n", "original_video_id video_id frame_id path labels\n", ""):
        path.write_text(header + "7 0 0 f/7_1.jpg 3\n7 0 1 f/7_2.jpg 3\n8 1 0 f/8_1.jpg 1\n")
        got = read_frame_list(path, path_prefix="/p")
        assert got == {"7": ["/p/f/7_1.jpg", "/p/f/7_2.jpg"], "8": ["/p/f/8_1.jpg"]}, header
    path.write_text("7 0 0 f/7_1.jpg 3\noriginal_vido_id video_id frame_id path labels\n")
    assert read_frame_list(path, "/p")["original_vido_id"] == ["/p/path"]  # a header only counts on line 1


def test_seed_on_error_and_class_order_reach_the_dataset(ssv2, tmp_path):
    a, b, c = (SomethingSomething(ssv2, "train", PARAMS, seed=s) for s in (4, 4, 5))
    assert a.seed == 4 and torch.equal(a[0][0], b[0][0])
    assert any(not torch.equal(a[(e, 0)][0], c[(e, 0)][0]) for e in range(3))  # another seed, other frames
    (tmp_path / "frames").mkdir()
    for name in ["something-something-v2-train.json", "train.csv"]:
        shutil.copy(ssv2 / name, tmp_path / name)
    # class ids not in alphabetical order: class_names follows the ids
    (tmp_path / "something-something-v2-labels.json").write_text(json.dumps({c: str(2 - i) for i, c in enumerate(CLASSES)}))
    strict = SomethingSomething(tmp_path, "train", PARAMS, on_error="raise", path_prefix=tmp_path / "frames")
    assert strict.class_names == CLASSES[::-1] and strict.on_error == "raise"
    with pytest.raises(MediaError, match=r"frames/frames/101/101_0000\d\d\.jpg: frame file not found"):
        strict[0]  # the frames are not under this prefix


def test_webm_folder_from_video_dir_or_path_prefix(ssv2, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(ssv2 / "videos", moved)
    for kwargs in ({"video_dir": moved}, {"path_prefix": moved}):
        ds = SomethingSomething(ssv2, "train", PARAMS, source="video", **kwargs)
        assert [v.path for v in ds.videos] == [str(moved / "101.webm"), str(moved / "102.webm")]
        assert ds[0][3]["error"] == ""


def test_version_and_source_are_checked(ssv2):
    with pytest.raises(ValueError, match="Something-Something version must be 1 or 2, got 3"):
        SomethingSomething(ssv2, "train", PARAMS, version=3)
    with pytest.raises(ValueError, match="source must be 'frames' or 'video', got 'jpeg'"):
        SomethingSomething(ssv2, "train", PARAMS, source="jpeg")


def test_a_video_that_states_no_duration_is_decoded_whole_and_sampled_on_its_own_frames(tmp_path):
    # A raw H.264 stream under the webm name: FFmpeg reads it by content, and it tells no duration.
    write_ssv2_annotations(tmp_path, CLASSES, "something-something-v2-validation.json", [("7", 0)])
    encode_h264(tmp_path / "7.webm", frame_stack(40), container_format="h264")
    params = PARAMS.replace(train_crop_size=48, train_jitter_scales=(48, 48))
    ds = SomethingSomething(tmp_path, "val", params, source="video")
    centres = [(s + e) // 2 for s, e in BOUNDS_40_8]  # one view: the centre of each segment of the 40 frames
    assert np.abs(grey(ds[0][0]) - [level(i) for i in centres]).max() < 3
