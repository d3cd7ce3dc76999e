"""`vov3d predict` on real encoded files (mp4/h264, webm/vp9, avi/mjpeg, mkv/mpeg4), broken, empty and
missing files among them, JSON output, views/crops, class names, and the command's error messages."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from task_media import constant, first_frame, write_video
from task_models import trained_like
import vov3d.pretrained as pretrained
from vov3d.checkpoint import save_checkpoint
from vov3d.engine import predict
from vov3d.engine.video_clips import ViewSpec, read_views
from vov3d.labels import load_class_names

CLASSES = ["push", "pull", "spin", "drop", "lift"]
RED, TEAL = (200, 40, 90), (20, 180, 160)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    model = trained_like("vov3d_m", len(CLASSES))
    cfg = "DATA:\n  NUM_FRAMES: 4\n  TEST_CROP_SIZE: 32\nTEST:\n  DATASET: kinetics\n"
    ckpt = save_checkpoint(root / "model.pyth", model, epoch=1, cfg=cfg, extra={"class_names": CLASSES})
    videos = {
        "mp4": write_video(root / "red.mp4", frames=10, image=constant(RED)),
        "webm": write_video(root / "square.webm", frames=30, width=80, height=48),
        "avi": write_video(root / "teal.avi", frames=8, width=48, height=64, fps=12, image=constant(TEAL)),
        "mkv": write_video(root / "square.mkv", frames=3, width=40, height=40),  # shorter than a clip
    }
    broken = root / "broken.mp4"
    data = write_video(root / "whole.mp4", frames=20).read_bytes()
    broken.write_bytes(data[: len(data) // 3])  # truncated: the index (moov) at the end is lost
    empty = root / "empty.mkv"
    empty.write_bytes(b"")
    return {"root": root, "model": model, "ckpt": ckpt, "videos": videos, "broken": broken, "empty": empty,
            "missing": root / "no_such_video.webm"}


def run_json(capsys, args) -> tuple[int, dict]:
    status = predict.main([*map(str, args), "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out)


def expected_probabilities(model: torch.nn.Module, video: Path, frames: int = 4, size: int = 32) -> torch.Tensor:
    """Softmax of the model on the clip a flat-colour video must give: every view is that colour."""
    rgb = torch.tensor(first_frame(video)[0, 0], dtype=torch.float32) / 255.0
    clip = ((rgb - 0.45) / 0.225).view(1, 3, 1, 1, 1).expand(1, 3, frames, size, size)
    with torch.no_grad():
        return model(clip.contiguous()).softmax(dim=1)[0]


def test_predicts_every_readable_file_and_reports_the_others(files, capsys):
    videos = files["videos"]
    args = [videos["mp4"], files["broken"], videos["webm"], files["empty"], videos["avi"], files["missing"],
            videos["mkv"], "--checkpoint", files["ckpt"], "--top-k", "5", "--views", "2"]
    status, doc = run_json(capsys, args)
    assert status == 1 and doc["failed"] == 3 and doc["model"] == "vov3d_m"
    by_video = {Path(r["video"]).name: r for r in doc["results"]}
    assert [Path(r["video"]).name for r in doc["results"]] == [Path(a).name for a in args[:7]]  # input order
    for name in ("red.mp4", "square.webm", "teal.avi", "square.mkv"):
        result = by_video[name]
        assert result["ok"] and result["views"] == 2 and result["frames"] == 4 and result["crop_size"] == 32
        probs = [item["probability"] for item in result["top_k"]]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5) and probs == sorted(probs, reverse=True)
        assert {item["name"] for item in result["top_k"]} == set(CLASSES)  # the checkpoint's class names
    assert by_video["square.webm"]["source_frames"] == 30 and by_video["teal.avi"]["width"] == 48
    assert "no_such_video.webm" in by_video and by_video["no_such_video.webm"]["error"] == "file not found"
    assert not by_video["broken.mp4"]["ok"] and by_video["broken.mp4"]["error"]
    assert not by_video["empty.mkv"]["ok"] and "empty" in by_video["empty.mkv"]["error"]

    # flat-colour videos: the probabilities the model gives that colour, computed here without the pipeline
    for name, video in (("red.mp4", videos["mp4"]), ("teal.avi", videos["avi"])):
        got = torch.tensor([next(i["probability"] for i in by_video[name]["top_k"] if i["class"] == c)
                            for c in range(len(CLASSES))])
        torch.testing.assert_close(got, expected_probabilities(files["model"], video), atol=2e-3, rtol=0)
    red = [i["class"] for i in by_video["red.mp4"]["top_k"]]
    teal = [i["class"] for i in by_video["teal.avi"]["top_k"]]
    assert red != teal  # the comparison above means something: the model tells the colours apart


def test_cut_file_whose_header_promises_more_frames(tmp_path, caplog):
    whole = write_video(tmp_path / "long.mkv", frames=90).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole[: len(whole) // 2])  # the header (duration 3.6 s) survives, half the frames do not
    spec = ViewSpec(num_frames=4, sampling_rate=8, crop_size=32, num_views=3)
    with caplog.at_level(logging.WARNING, logger="vov3d.engine.video_clips"):
        views = read_views(cut, spec)
    assert "promises 90 frames" in caplog.text and 20 < views.frame_count < 90
    assert views.frames.shape == (3, 3, 4, 32, 32) and max(int(i.max()) for i in views.indices) < views.frame_count


def test_views_and_crops_change_what_is_evaluated(files, capsys):
    video, ckpt = files["videos"]["webm"], files["ckpt"]
    _, one = run_json(capsys, [video, "--checkpoint", ckpt, "--views", "1", "--crops", "1"])
    _, six = run_json(capsys, [video, "--checkpoint", ckpt, "--views", "2", "--crops", "3", "--top-k", "2"])
    a, b = one["results"][0], six["results"][0]
    assert (a["views"], b["views"]) == (1, 6) and len(a["top_k"]) == 5 and len(b["top_k"]) == 2
    assert a["top_k"][0]["probability"] != pytest.approx(b["top_k"][0]["probability"], abs=1e-6)


def test_labels_option_and_numbers_without_names(files, capsys, tmp_path):
    bare = save_checkpoint(tmp_path / "bare.pth", files["model"])  # no class names in it
    _, doc = run_json(capsys, [files["videos"]["mp4"], "--checkpoint", bare, "--frames", "4", "--crop-size", "32"])
    assert {i["name"] for i in doc["results"][0]["top_k"]} == {"0", "1", "2", "3", "4"}
    names = tmp_path / "names.txt"
    names.write_text("\n".join(n.upper() for n in CLASSES) + "\n")
    # an engine checkpoint whose cfg names a class-names file (DATA.CLASS_NAMES), or with them in train_state
    for extra in ({"cfg": f"DATA:\n  CLASS_NAMES: {names}\n"}, {"train_state": {"class_names": CLASSES[::-1]}}):
        ckpt = save_checkpoint(tmp_path / "engine.pth", files["model"], cfg=extra.get("cfg"),
                               extra={k: v for k, v in extra.items() if k != "cfg"})
        _, doc = run_json(capsys, [files["videos"]["mp4"], "--checkpoint", ckpt, "--frames", "4", "--crop-size", "32"])
        wanted = [n.upper() for n in CLASSES] if "cfg" in extra else CLASSES[::-1]
        assert all(i["name"] == wanted[i["class"]] for i in doc["results"][0]["top_k"])
    _, doc = run_json(capsys, [files["videos"]["mp4"], "--checkpoint", bare, "--labels", names,
                               "--frames", "4", "--crop-size", "32"])
    assert {i["name"] for i in doc["results"][0]["top_k"]} == {n.upper() for n in CLASSES}


@pytest.mark.parametrize("args, status, message", [
    (["--model", "vov3d_xl", "--checkpoint", "{ckpt}"], 1, "unknown model 'vov3d_xl'"),
    (["--checkpoint", "{root}/nope.pth"], 1, "checkpoint file not found"),
    (["--checkpoint", "{video}"], 1, "not a readable PyTorch checkpoint"),
    (["--model", "x3d_m", "--checkpoint", "{ckpt}"], 1, "holds a vov3d_m"),
    (["--model", "vov3d_m", "--pretrained", "k700"], 1, "unknown pretrained tag 'k700'"),
    (["--model", "vov3d_m"], 2, "--checkpoint FILE or --pretrained TAG"),
    (["--checkpoint", "{ckpt}", "--labels", "kinetics400"], 2, "400 class names but the model has 5"),
    (["--checkpoint", "{ckpt}", "--crops", "2"], 2, "invalid choice"),
])
def test_errors_are_one_clear_line(files, capsys, args, status, message):
    fill = {"ckpt": files["ckpt"], "root": files["root"], "video": files["videos"]["mp4"]}
    code = predict.main([str(files["videos"]["mp4"]), *(a.format(**fill) for a in args)])
    err = capsys.readouterr().err
    assert code == status and message in err and "Traceback" not in err


def test_released_weights_bring_their_class_names_and_sampling(files, hub, capsys):
    weights = pretrained.get_pretrained("x3d_m", "ssv2_f16")
    save_checkpoint(hub / weights.filename, trained_like("x3d_m", weights.num_classes))
    status, doc = run_json(capsys, [files["videos"]["webm"], "--model", "x3d_m", "--pretrained", "ssv2",
                                    "--frames", "4", "--crop-size", "32", "--top-k", "3"])
    assert status == 0 and doc["weights"] == "x3d_m.ssv2_f16" and doc["sampling"] == "segments"
    ssv2 = load_class_names("ssv2")
    assert all(item["name"] == ssv2[item["class"]] for item in doc["results"][0]["top_k"])


def test_module_entry_point(files):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "vov3d.engine.predict", str(files["videos"]["avi"]), str(files["missing"]),
         "--checkpoint", str(files["ckpt"]), "--top-k", "2", "--views", "1"],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "teal.avi: 1 views" in proc.stdout and "1. " in proc.stdout
    assert any(name in proc.stdout for name in CLASSES)
    assert "no_such_video.webm: file not found" in proc.stderr and "Traceback" not in proc.stderr
