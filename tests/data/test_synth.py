"""The built-in synthetic temporal dataset (vov3d.data.synth, docs/synthetic_data.md).

Checks the time-reversal pairing on rendered frames, class semantics, balance, the file
formats of spec §8.2/§8.3, determinism and the output-folder rules. Tiny sizes keep it fast.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from vov3d.data import synth
from vov3d.data.synth.render import Background, Scene, SceneObject, Timing

SMALL = {"frame_size": (64, 48), "num_frames": 16}


def _clip(class_id: int, seed: int) -> np.ndarray:
    scene = synth.sample_scene(class_id, synth.video_rng(seed, "train", 0), **SMALL)
    return scene.render(synth.frame_ticks(scene.duration, synth.KINETICS_FPS))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- classes and rendering --------------------------------------------------------------


def test_classes_come_in_reversed_pairs():
    assert synth.NUM_CLASSES == len(synth.CLASS_TEMPLATES) == 12
    assert [synth.paired_class(c) for c in range(4)] == [1, 0, 3, 2]
    assert all(synth.paired_class(synth.paired_class(c)) == c for c in range(synth.NUM_CLASSES))
    assert all("[" not in n and ";" not in n for n in synth.CLASS_NAMES)
    with pytest.raises(ValueError, match="class id"):
        synth.paired_class(12)


@pytest.mark.parametrize("class_id", range(0, 12, 2))
@pytest.mark.parametrize("seed", [0, 7])
def test_paired_class_is_the_exact_time_reversal(class_id, seed):
    forward = _clip(class_id, seed)
    backward = _clip(synth.paired_class(class_id), seed)
    assert forward.dtype == np.uint8 and forward.shape == (16, 48, 64, 3)
    assert np.array_equal(backward, forward[::-1])
    assert not np.array_equal(backward, forward)  # the clip does change over time
    # Hence a bag of frames is the same for both classes: nothing but order tells them apart.
    assert sorted(f.tobytes() for f in forward) == sorted(f.tobytes() for f in backward)


def test_time_reversed_scene_renders_reversed_frames_at_every_frame_rate():
    scene = synth.sample_scene(10, synth.video_rng(3, "val", 4), num_frames=91)  # 180 ticks
    for fps in (60, 30, 20, 15, 12, 10):  # frames symmetric about the middle of the clip
        ticks = synth.frame_ticks(scene.duration, fps)
        assert ticks[-1] == scene.duration
        assert np.array_equal(scene.time_reversed().render(ticks), scene.render(ticks)[::-1])


def _main_states(class_id: int, seed: int) -> list[np.ndarray]:
    scene = synth.sample_scene(class_id, synth.video_rng(seed, "test", 1), **SMALL)
    ticks = np.array([0, scene.duration])
    return [o.states(ticks) for o in scene.objects[-synth.num_main_objects(class_id) :]]


@pytest.mark.parametrize("seed", range(5))
def test_main_object_does_what_the_class_says(seed):
    x, y, radius, angle, opacity = range(5)

    def change(class_id: int, field: int) -> float:
        (states,) = _main_states(class_id, seed)
        return states[1, field] - states[0, field]

    assert change(0, x) > 0 > change(1, x)  # left to right / right to left
    assert change(2, y) > 0 > change(3, y)  # down / up (rows grow downwards)
    assert change(4, radius) > 0 > change(5, radius)  # growing / shrinking
    assert change(6, angle) > 0 > change(7, angle)  # clockwise / counterclockwise
    assert _main_states(8, seed)[0][:, opacity].tolist() == [0.0, 1.0]
    assert _main_states(9, seed)[0][:, opacity].tolist() == [1.0, 0.0]
    for class_id, sign in ((10, -1), (11, 1)):  # closer / away from each other
        a, b = _main_states(class_id, seed)
        gap = np.hypot(*(a[:, :2] - b[:, :2]).T)
        assert sign * (gap[1] - gap[0]) > 0


def test_increasing_angle_turns_clockwise_on_screen():
    background = Background("gradient", ((0, 0, 0), (0, 0, 0)), 0.0, 1.0, 0.0, seed=0)
    obj = SceneObject("circle", (255, 0, 0), (32, 32, 20, 0, 1), (32, 32, 20, math.pi / 2, 1), Timing(0, 2),
                      second_colour=(0, 0, 255))
    first, last = Scene(64, 64, 2, background, (obj,)).render([0, 2])
    # The second colour starts on the lower half (6 o'clock) and ends on the left (9 o'clock).
    assert first[44, 32, 2] == 255 and first[20, 32, 0] == 255
    assert last[32, 20, 2] == 255 and last[32, 44, 0] == 255


def test_timing_progress_is_exactly_point_symmetric():
    for smooth in (False, True):
        timing = Timing(5, 37, smooth)
        ticks = np.arange(0, 43)
        forward = timing.progress(ticks)
        backward = timing.time_reversed(42).progress(42 - ticks)
        assert np.array_equal(forward + backward, np.full_like(forward, 1 << 20))
        assert forward[0] == 0 and forward[-1] == 1 << 20 and np.all(np.diff(forward) >= 0)


def test_extracted_frames_follow_ffmpeg_duplication():
    assert synth.extracted_frame_sources(4).tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    assert len(synth.extracted_frame_sources(37)) == 92


@pytest.mark.parametrize("num_frames", [16, synth.DEFAULT_NUM_FRAMES])
def test_ss_frames_reverse_exactly_too(num_frames):
    duration = synth.scene_duration(num_frames)
    ticks_12 = synth.frame_ticks(duration, synth.SS_VIDEO_FPS)
    assert np.array_equal(duration - ticks_12[::-1], ticks_12)  # 12 fps frames symmetric in time
    # ffmpeg's 2-or-3 duplication is symmetric too, so bags of extracted frames match as well.
    copies = np.bincount(synth.extracted_frame_sources(len(ticks_12)))
    assert np.array_equal(copies, copies[::-1])
    scene = synth.sample_scene(6, synth.video_rng(0, "val", 2), (64, 48), num_frames)
    assert np.array_equal(scene.time_reversed().render(ticks_12), scene.render(ticks_12)[::-1])


# --- splits ------------------------------------------------------------------------------


def test_split_labels_are_balanced_shuffled_and_deterministic():
    labels = synth.split_labels(0, "train", 240)
    assert set(Counter(labels.tolist()).values()) == {20}
    assert labels[:12].tolist() != list(range(12))
    assert np.array_equal(labels, synth.split_labels(0, "train", 240))
    assert not np.array_equal(labels, synth.split_labels(1, "train", 240))
    uneven = Counter(synth.split_labels(0, "val", 50).tolist())
    assert len(uneven) == 12 and max(uneven.values()) - min(uneven.values()) == 1


# --- files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth") / "out"
    summary = synth.generate_dataset(root, "all", seed=3, num_train=12, num_val=6, num_test=6, num_workers=1, **SMALL)
    return root, summary


def test_summary_is_json_and_counts_are_balanced(dataset):
    root, summary = dataset
    assert json.loads(json.dumps(summary)) == summary
    assert summary["videos_per_split"] == {"train": 12, "val": 6, "test": 6}
    assert set(summary["videos_per_split_and_class"]["train"].values()) == {1}
    assert sorted(summary["formats"]) == ["kinetics", "ssv1", "ssv2"]
    assert summary["formats"]["ssv1"]["splits"] == {"train": 12, "validation": 12}
    # 16 frames at 30 fps span 30 ticks of 1/60 s: 7 frames at 12 fps, shown as 17 at 30 fps.
    assert summary["frames"] == {"kinetics_30fps": 16, "ssv1_12fps": 7, "ssv2_webm_12fps": 7, "ssv2_extracted_30fps": 17}
    for info in summary["formats"].values():
        assert not info["reused"] and all(Path(p).is_file() for p in info["annotation_files"])
    assert not list(root.rglob("*.tmp")) and not list(root.rglob("*.part"))
    assert not list(root.rglob(synth.IN_PROGRESS_NAME))


def test_kinetics_layout(dataset):
    root = dataset[0] / "kinetics"
    assert (root / "classes.txt").read_text().splitlines() == list(synth.CLASS_NAMES)
    for split, count in (("train", 12), ("val", 6), ("test", 6)):
        lines = (root / f"{split}.csv").read_text().splitlines()
        assert len(lines) == count
        path, label = lines[0].split(" ")
        assert path.startswith(f"{split}/") and path.endswith(".mp4") and 0 <= int(label) < 12
    path, label = (root / "train.csv").read_text().splitlines()[0].split(" ")
    with av.open(str(root / path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 30
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    # The video holds the scene of its class (up to compression).
    index = int(Path(path).stem) % 1_000_000
    scene = synth.sample_scene(int(label), synth.video_rng(3, "train", index), **SMALL)
    rendered = scene.render(synth.frame_ticks(scene.duration, 30))
    assert decoded.shape == rendered.shape == (16, 48, 64, 3)
    assert np.abs(decoded.astype(int) - rendered).mean() < 6


def _frame_list(path: Path) -> dict[str, list[list[str]]]:
    lines = path.read_text().splitlines()
    assert lines[0] == synth.SS_FRAME_LIST_HEADER
    videos: dict[str, list[list[str]]] = {}
    for line in lines[1:]:
        row = line.split(" ")
        assert len(row) == 5
        videos.setdefault(row[0], []).append(row)
    return videos


def test_ssv1_layout(dataset):
    root = dataset[0] / "ssv1"
    labels_text = (root / "something-something-v1-labels.csv").read_text()
    assert labels_text.endswith("\n") and labels_text.splitlines() == list(synth.CLASS_NAMES)
    for name, annotations, count in (("train.csv", "train", 12), ("val.csv", "validation", 12)):
        text = (root / f"something-something-v1-{annotations}.csv").read_text()
        assert text.endswith("\n")
        rows = [line.split(";") for line in text.splitlines()]
        frames = _frame_list(root / name)
        assert len(rows) == len(frames) == count  # the reader asserts equal counts (spec §8.3)
        vid, class_name = rows[0]
        assert class_name in synth.CLASS_NAMES
        assert all(int(r[4]) == synth.CLASS_NAMES.index(class_name) for r in frames[vid])
        paths = [r[3] for r in frames[vid]]
        assert paths[0] == f"frames/{vid}/{vid}_000001.jpg" and len(paths) == 7
        assert all((root / p).is_file() for p in paths)
    assert (root / paths[0]).read_bytes()[:2] == b"\xff\xd8"  # JPEG


def test_ssv2_layout(dataset):
    root = dataset[0] / "ssv2"
    labels = json.loads((root / "something-something-v2-labels.json").read_text())
    assert labels == {name: str(i) for i, name in enumerate(synth.CLASS_NAMES)}
    for name, annotations, count in (("train.csv", "train", 12), ("val.csv", "validation", 12)):
        entries = json.loads((root / f"something-something-v2-{annotations}.json").read_text())
        frames = _frame_list(root / name)
        assert len(entries) == len(frames) == count
        for entry in entries:
            label = int(labels[entry["template"].replace("[", "").replace("]", "")])
            assert entry["template"] == synth.CLASS_TEMPLATES[label]
            assert entry["template"].count("[") == len(entry["placeholders"]) >= 1
            assert all(p in entry["label"] for p in entry["placeholders"])
            assert len(frames[entry["id"]]) == 17
            assert int(frames[entry["id"]][0][4]) == label
    with av.open(str(root / "videos" / f"{entries[0]['id']}.webm")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp9" and stream.average_rate == 12
        assert sum(1 for _ in container.decode(stream)) == 7


def test_same_seed_same_bytes_any_workers_and_other_seed_differs(dataset, tmp_path):
    root = dataset[0]
    again = synth.generate_dataset(tmp_path / "a", "all", seed=3, num_train=12, num_val=6, num_test=6,
                                   num_workers=2, **SMALL)
    assert again["videos_per_split_and_class"] == dataset[1]["videos_per_split_and_class"]
    reference = _files(root)
    assert _files(tmp_path / "a") == reference  # mp4, webm, jpg, annotations, manifests
    other = synth.generate_dataset(tmp_path / "b", "kinetics", seed=4, num_train=12, num_val=6, num_test=6,
                                   num_workers=1, **SMALL)
    assert other["videos_per_split"] == again["videos_per_split"]
    other_files = _files(tmp_path / "b" / "kinetics")
    assert other_files["train.csv"] != reference["kinetics/train.csv"]
    assert other_files["train/1000000.mp4"] != reference["kinetics/train/1000000.mp4"]


# --- output-folder rules and arguments ------------------------------------------------------


def test_folder_rules(tmp_path):
    args = dict(num_train=2, num_val=0, num_test=0, num_workers=1, **SMALL)
    first = synth.generate_dataset(tmp_path, "kinetics", **args)
    assert not first["formats"]["kinetics"]["reused"]
    assert synth.generate_dataset(tmp_path, "kinetics", **args)["formats"]["kinetics"]["reused"]
    with pytest.raises(ValueError, match="other settings"):
        synth.generate_dataset(tmp_path, "kinetics", seed=1, **args)
    assert not synth.generate_dataset(tmp_path, "kinetics", seed=1, overwrite=True, **args)["formats"]["kinetics"][
        "reused"
    ]
    # An interrupted run (no manifest yet) is finished by running the same command again.
    manifest = tmp_path / "kinetics" / synth.MANIFEST_NAME
    saved = manifest.read_text()
    manifest.unlink()
    (tmp_path / "kinetics" / "train.csv").unlink()
    (tmp_path / "kinetics" / synth.IN_PROGRESS_NAME).write_text(
        json.dumps(json.loads(saved)["settings"], sort_keys=True)
    )
    assert not synth.generate_dataset(tmp_path, "kinetics", seed=1, **args)["formats"]["kinetics"]["reused"]
    assert manifest.read_text() == saved and (tmp_path / "kinetics" / "train.csv").is_file()
    # Someone else's files are never touched.
    foreign = tmp_path / "mine"
    (foreign / "ssv1").mkdir(parents=True)
    (foreign / "ssv1" / "notes.txt").write_text("keep")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="holds no synthetic dataset"):
            synth.generate_dataset(foreign, "ssv1", overwrite=overwrite, **args)
    assert (foreign / "ssv1" / "notes.txt").read_text() == "keep"


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="accepted: kinetics, ssv1, ssv2, all"):
        synth.generate_dataset(tmp_path, "ucf101")
    with pytest.raises(ValueError, match="num_val"):
        synth.generate_dataset(tmp_path, num_val=-1)
    with pytest.raises(ValueError, match="even"):
        synth.generate_dataset(tmp_path, frame_size=(63, 48))
    with pytest.raises(ValueError, match="5k"):
        synth.generate_dataset(tmp_path, num_frames=90)
    with pytest.raises(ValueError, match="empty"):
        synth.generate_dataset(tmp_path, num_train=0, num_val=0, num_test=0)
    assert not any(tmp_path.iterdir())


def test_cli_writes_the_default_sized_videos(tmp_path, capsys):
    from vov3d.cli import main

    assert main(["data", "synth", "--out", str(tmp_path), "--num-train", "1", "--num-val", "0", "--num-test", "0"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frame_size"] == [160, 120] and summary["frames"]["kinetics_30fps"] == 91
    path = (tmp_path / "kinetics" / "train.csv").read_text().split(" ")[0]
    with av.open(str(tmp_path / "kinetics" / path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 91
