"""`vov3d data check`: every item read through the pipeline, bad files listed once, exit status 1."""

from __future__ import annotations

import json

import pytest

from vov3d.cli import main
from vov3d.data.synth import generate_dataset


@pytest.fixture(scope="module")
def tiny_kinetics(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    generate_dataset(out, "kinetics", seed=3, num_train=12, num_val=12, num_test=3, frame_size=(64, 48), num_frames=31)
    return out / "kinetics"


def _summaries(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_clean_dataset_passes(tiny_kinetics, capsys):
    assert main(["data", "check", str(tiny_kinetics), "--split", "train", "val", "--workers", "0"]) == 0
    train, val = _summaries(capsys)
    assert (train["items"], train["bad_videos"], train["clip_shape"]) == (12, 0, [3, 16, 224, 224])
    assert val["items"] == 12


def test_corrupt_video_is_listed_once_and_fails_the_check(tiny_kinetics, tmp_path, capsys):
    broken = tmp_path / "kinetics"
    broken.mkdir()
    lines = (tiny_kinetics / "test.csv").read_text().splitlines()
    for line in lines:  # a copy of the test split, with absolute paths
        rel, label = line.rsplit(" ", 1)
        (broken / "test.csv").open("a").write(f"{tiny_kinetics / rel} {label}\n")
    bad_rel = lines[0].rsplit(" ", 1)[0]
    data = (tiny_kinetics / bad_rel).read_bytes()
    bad_copy = tmp_path / "bad.mp4"
    bad_copy.write_bytes(data[: len(data) // 3])  # truncated
    text = (broken / "test.csv").read_text().replace(str(tiny_kinetics / bad_rel), str(bad_copy))
    (broken / "test.csv").write_text(text)

    assert main(["data", "check", str(broken), "--split", "test", "--workers", "0"]) == 1
    (test,) = _summaries(capsys)
    assert test["items"] == 3 * 30  # 10 temporal x 3 spatial views
    assert test["bad_videos"] == 1
    assert test["bad"][0]["path"] == str(bad_copy) and str(bad_copy) in test["bad"][0]["error"]
