"""Difficulty levels of the built-in synthetic dataset (vov3d.data.synth.levels, docs/synthetic_data.md).

At every level the paired classes must stay exact time reversals (only the order of the frames tells
them apart); the easier levels change the nuisances; the full level must not change at all.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest

from vov3d.data import synth

EASIER = ("easy", "medium")


def _frames(scene) -> np.ndarray:
    return scene.render(synth.frame_ticks(scene.duration, synth.KINETICS_FPS))


@pytest.mark.parametrize("level", EASIER)
@pytest.mark.parametrize("class_id", range(0, 12, 2))
def test_pairs_are_exact_time_reversals_at_every_level(level, class_id):
    for seed in (0, 9):
        forward = _frames(synth.sample_scene(class_id, synth.video_rng(seed, "train", 2), level=level))
        backward = _frames(synth.sample_scene(class_id + 1, synth.video_rng(seed, "train", 2), level=level))
        assert np.array_equal(backward, forward[::-1])
        assert not np.array_equal(backward, forward)
        assert sorted(f.tobytes() for f in forward) == sorted(f.tobytes() for f in backward)


def test_easy_level_is_rendered_at_a_training_size_on_plain_grey_without_distractors():
    level = synth.get_level("easy")
    assert level.frame_size == (32, 32) and level.num_frames == 16
    for class_id in range(12):
        scene = synth.sample_scene(class_id, synth.video_rng(1, "val", class_id), level="easy")
        assert (scene.width, scene.height, scene.duration) == (32, 32, 30)
        assert len(scene.objects) == synth.num_main_objects(class_id)  # no distractors
        background = scene.background.render(32, 32)
        assert np.unique(background.reshape(-1, 3), axis=0).tolist() == [[128, 128, 128]]  # flat grey, no grain
        for obj in scene.objects:  # the action lasts at least 80 % of the clip
            assert obj.timing.end - obj.timing.start >= 0.8 * scene.duration


def test_easy_objects_are_larger_and_move_longer_than_full_ones_at_the_same_size():
    def stats(level: str) -> tuple[float, float]:
        radii, lengths = [], []
        for index in range(40):
            scene = synth.sample_scene(0, synth.video_rng(2, "train", index), (64, 48), 31, level=level)
            obj = scene.objects[-1]
            radii.append(obj.first[2])
            lengths.append(obj.timing.end - obj.timing.start)
        return float(np.mean(radii)), float(np.min(lengths))

    (full_radius, full_shortest), (easy_radius, easy_shortest) = stats("full"), stats("easy")
    # Class 0's radius is 0.08-0.14 of the frame's short side at the full level, twice that at easy.
    assert 0.08 * 48 <= full_radius <= 0.14 * 48 and 0.16 * 48 <= easy_radius <= 0.28 * 48
    assert easy_radius > 1.5 * full_radius
    assert easy_shortest >= 0.8 * 60 > full_shortest


def test_medium_level_has_at_most_one_distractor_and_a_textured_background():
    counts = set()
    for index in range(30):
        scene = synth.sample_scene(4, synth.video_rng(0, "train", index), level="medium")
        counts.add(len(scene.objects) - 1)
        assert (scene.width, scene.height) == (64, 48)
    assert counts == {0, 1}
    background = synth.sample_scene(4, synth.video_rng(0, "train", 0), level="medium").background.render(64, 48)
    assert len(np.unique(background.reshape(-1, 3), axis=0)) > 10


def test_full_level_scenes_are_unchanged():
    # The scenes (every random draw) of the full level as the generator drew them before levels existed
    # (commit d810194); the files written from them are byte-identical to that version's too.
    text = "\n".join(repr(synth.sample_scene(c, synth.video_rng(5, "train", c), (64, 48), 16)) for c in range(12))
    assert hashlib.sha256(text.encode()).hexdigest() == "c7151a3238384a80619933237b8a2141db68a4466a6768b3947a3217ec0d065b"
    assert repr(synth.sample_scene(3, synth.video_rng(5, "train", 3), level="full")) == repr(
        synth.sample_scene(3, synth.video_rng(5, "train", 3))
    )


def test_generate_easy_level_writes_small_videos_and_records_the_level(tmp_path):
    summary = synth.generate_dataset(tmp_path, level="easy", num_train=12, num_val=2, num_test=2, num_workers=1)
    assert summary["level"] == "easy" and summary["frame_size"] == [32, 32]
    assert summary["frames"]["kinetics_30fps"] == 16
    root = tmp_path / "kinetics"
    manifest = json.loads((root / synth.MANIFEST_NAME).read_text())
    assert manifest["settings"]["level"] == "easy"
    lines = (root / "train.csv").read_text().splitlines()
    by_label = {int(label): path for path, label in (line.split(" ") for line in lines)}
    decoded = {}
    for label in (0, 1):
        with av.open(str(root / by_label[label])) as container:
            decoded[label] = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        assert decoded[label].shape == (16, 32, 32, 3)
        index = int(Path(by_label[label]).stem) % 1_000_000
        scene = synth.sample_scene(label, synth.video_rng(0, "train", index), level="easy")
        assert np.abs(decoded[label].astype(int) - _frames(scene)).mean() < 6
    # Same settings: reused; another level in the same folder: refused, naming both settings.
    again = synth.generate_dataset(tmp_path, level="easy", num_train=12, num_val=2, num_test=2, num_workers=1)
    assert again["formats"]["kinetics"]["reused"]
    with pytest.raises(ValueError, match="other settings"):
        synth.generate_dataset(tmp_path, level="medium", num_train=12, num_val=2, num_test=2, num_workers=1)


def test_full_level_manifest_has_no_level_key(tmp_path):
    summary = synth.generate_dataset(tmp_path, num_train=1, num_val=0, num_test=0, num_workers=1,
                                     frame_size=(32, 32), num_frames=6)
    assert summary["level"] == "full"
    settings = json.loads((tmp_path / "kinetics" / synth.MANIFEST_NAME).read_text())["settings"]
    assert "level" not in settings  # the full level's manifest is byte-identical to earlier versions


def test_unknown_level_is_refused_with_the_accepted_names(tmp_path):
    with pytest.raises(ValueError, match="unknown level 'hard'; accepted: full, medium, easy"):
        synth.generate_dataset(tmp_path, level="hard")
    with pytest.raises(ValueError, match="accepted: full, medium, easy"):
        synth.sample_scene(0, synth.video_rng(0, "train", 0), level="Easy")
    assert not any(tmp_path.iterdir())
