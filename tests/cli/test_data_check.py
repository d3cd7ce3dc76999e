"""`vov3d data check`: every item read through the pipeline, bad files listed once, exit status 1."""

from __future__ import annotations

import json

import numpy as np
import pytest
import simplejpeg

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


# ---------------------------------------------------------------------------------------------
# --path-prefix: SSv1/SSv2 frame folders outside the annotation folder (DATA.PATH_PREFIX).


def _write_something_with_frames_elsewhere(annotations, frames_root, version):
    """Two train videos of 6 JPEG frames under frames_root; annotation files (relative frame paths) elsewhere."""
    classes = ["Holding something", "Pushing something"]
    rows = [("11", 0), ("12", 1)]
    annotations.mkdir()
    if version == 1:
        (annotations / "something-something-v1-labels.csv").write_text("\n".join(classes) + "\n")
        (annotations / "something-something-v1-train.csv").write_text("".join(f"{v};{classes[c]}\n" for v, c in rows))
    else:
        (annotations / "something-something-v2-labels.json").write_text(json.dumps({c: str(i) for i, c in enumerate(classes)}))
        entries = [{"id": v, "template": classes[c].replace("something", "[something]")} for v, c in rows]
        (annotations / "something-something-v2-train.json").write_text(json.dumps(entries))
    lines = ["original_vido_id video_id frame_id path labels"]
    for number, (vid, label) in enumerate(rows):
        (frames_root / vid).mkdir(parents=True)
        for i in range(6):
            image = np.full((48, 64, 3), 20 * i, np.uint8)
            (frames_root / vid / f"{vid}_{i + 1:06d}.jpg").write_bytes(simplejpeg.encode_jpeg(image, colorspace="RGB"))
            lines.append(f"{vid} {number} {i} {vid}/{vid}_{i + 1:06d}.jpg {label}")
    (annotations / "train.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("fmt, version", [("ssv1", 1), ("ssv2", 2)])
def test_path_prefix_finds_frames_outside_the_annotation_folder(tmp_path, capsys, fmt, version):
    annotations, frames_root = tmp_path / "labels", tmp_path / "elsewhere" / "frames"
    _write_something_with_frames_elsewhere(annotations, frames_root, version)
    command = ["data", "check", str(annotations), "--format", fmt, "--split", "train", "--workers", "0"]

    assert main(command) == 1  # without the prefix the frames are looked for beside the annotations
    (summary,) = _summaries(capsys)
    assert summary["bad_videos"] == 2 and str(annotations / "11") in summary["bad"][0]["path"]

    assert main(command + ["--path-prefix", str(frames_root)]) == 0
    (summary,) = _summaries(capsys)
    assert (summary["items"], summary["bad_videos"], summary["clip_shape"]) == (2, 0, [3, 16, 224, 224])


def test_synth_level_reaches_the_generator(tmp_path, capsys):
    """`vov3d data synth --level easy` writes the easy level (32x32 frames, recorded in the manifest)."""
    import json

    import av

    from vov3d.cli import main

    out = tmp_path / "synth"
    args = ["data", "synth", "--out", str(out), "--level", "easy", "--num-train", "2", "--num-val", "1", "--num-test", "1"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["level"] == "easy"
    manifest = json.loads((out / "kinetics" / "synth_manifest.json").read_text())
    assert manifest["settings"]["level"] == "easy"
    video = next((out / "kinetics" / "train").glob("*.mp4"))
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (32, 32)
