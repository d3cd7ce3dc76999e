"""`vov3d explain`: Grad-CAM's map where the answer is known (a small VoV3D trained here to tell whether a
bright moving square is in the clip), and the files the command writes (GIF, MP4, PNG strip)."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from task_media import write_video
from task_models import trained_like
from vov3d.checkpoint import save_checkpoint
from vov3d.engine import explain
from vov3d.models import build_vov3d

T, SQUARE, SHIFT = 4, 16, 3


def square_clips(n: int, size: int, has_square: list[bool], g: torch.Generator):
    """Noise clips, some with a bright square moving right by SHIFT px a frame; returns clips and (y, x) of the square."""
    x = torch.rand(n, 3, T, size, size, generator=g) * 0.3
    where = []
    for i in range(n):
        if not has_square[i]:
            where.append(None)
            continue
        y0 = int(torch.randint(0, size - SQUARE, (1,), generator=g))
        x0 = int(torch.randint(0, size - SQUARE - SHIFT * T, (1,), generator=g))
        for t in range(T):
            x[i, :, t, y0 : y0 + SQUARE, x0 + SHIFT * t : x0 + SHIFT * t + SQUARE] = 1.0
        where.append((y0, x0))
    return (x - 0.45) / 0.225, where


@pytest.fixture(scope="module")
def square_detector():
    """A small VoV3D trained for 40 steps at 64x64 on 'is there a square' (class 1: yes); BN statistics re-measured."""
    torch.manual_seed(0)
    model = build_vov3d(num_classes=2, inner_channels=8, blocks=(1, 1, 1, 1), layers_per_block=2, head_dim=32,
                        dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(40):
        labels = torch.randint(0, 2, (8,), generator=g)
        clips, _ = square_clips(8, 64, labels.bool().tolist(), g)
        loss = F.cross_entropy(model(clips), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.momentum = None
                m.reset_running_stats()
        for _ in range(3):
            model(square_clips(8, 64, torch.randint(0, 2, (8,), generator=g).bool().tolist(), g)[0])
    model.eval()
    clips, _ = square_clips(16, 64, [True] * 8 + [False] * 8, g)
    with torch.no_grad():
        predicted = model(clips).argmax(dim=1)
    assert predicted.tolist() == [1] * 8 + [0] * 8, "the detector did not learn the task"
    return model


def test_grad_cam_concentrates_on_the_square(square_detector):
    # a larger frame than in training (fully convolutional): s5 is 5x5 cells of 32 px, the square one cell
    g = torch.Generator().manual_seed(1)
    size = 160
    clips, where = square_clips(4, size, [True] * 4, g)
    inside_mass, area = [], []
    for i in range(4):
        result = explain.grad_cam(square_detector, clips[i : i + 1], class_index=1)
        cam = result.cam
        assert cam.shape == (T, size, size) and float(cam.min()) >= 0 and float(cam.max()) == pytest.approx(1.0)
        near = torch.zeros(T, size, size, dtype=torch.bool)  # the square, grown by 24 px (under one s5 cell)
        y0, x0 = where[i]
        for t in range(T):
            left = x0 + SHIFT * t
            near[t, max(0, y0 - 24) : y0 + SQUARE + 24, max(0, left - 24) : left + SQUARE + 24] = True
        inside_mass.append(float(cam[near].sum() / cam.sum()))
        area.append(float(near.float().mean()))
        assert result.class_index == 1 and result.probabilities.sum() == pytest.approx(1.0)
    # the region covers ~14% of the clip and holds most of the map's mass: 3x more than its share at least
    assert np.mean(inside_mass) > 3 * np.mean(area), (inside_mass, area)
    assert min(m / a for m, a in zip(inside_mass, area)) > 2, (inside_mass, area)


def test_grad_cam_of_the_predicted_class_by_default(square_detector):
    g = torch.Generator().manual_seed(2)
    clips, _ = square_clips(1, 64, [False], g)
    result = explain.grad_cam(square_detector, clips)
    assert result.class_index == 0 == int(result.probabilities.argmax())
    with pytest.raises(ValueError, match="class 5 out of range"):
        explain.grad_cam(square_detector, clips, class_index=5)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    ckpt = save_checkpoint(root / "model.pyth", trained_like("vov3d_m", 3),
                           extra={"class_names": ["left", "right", "none"]})
    video = write_video(root / "square.mp4", frames=16, width=64, height=48)
    return root, ckpt, video


def test_writes_gif_and_strip(checkpoint, capsys):
    root, ckpt, video = checkpoint
    out = root / "cam.gif"
    status = explain.main([str(video), "--checkpoint", str(ckpt), "--out", str(out), "--frames", "4",
                           "--crop-size", "32", "--class", "right"])
    printed = capsys.readouterr().out
    assert status == 0 and "class 1 (right" in printed and str(out) in printed
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4 and min(gif.size) >= 160  # enlarged from 32 px
    with Image.open(root / "cam_strip.png") as strip:
        assert strip.format == "PNG" and strip.size == (4 * 160, 2 * 160)  # frames above, overlays below


def test_writes_mp4(checkpoint, capsys):
    root, ckpt, video = checkpoint
    out = root / "cam.mp4"
    assert explain.main([str(video), "--checkpoint", str(ckpt), "--out", str(out), "--frames", "4",
                         "--crop-size", "32"]) == 0
    assert "predicted" in capsys.readouterr().out
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape == (160, 160, 3)


@pytest.mark.parametrize("args, status, message", [
    (["--out", "{root}/cam.png"], 2, "expected a .gif or .mp4 file"),
    (["--out", "{root}/cam.gif", "--class", "9"], 2, "the model has 3 classes"),
    (["--out", "{root}/cam.gif", "--class", "jump"], 2, "not a class number nor a class name"),
    (["--out", "{root}/no/cam.gif"], 1, "does not exist"),
])
def test_errors(checkpoint, capsys, args, status, message):
    root, ckpt, video = checkpoint
    code = explain.main([str(video), "--checkpoint", str(ckpt), "--frames", "4", "--crop-size", "32",
                         *(a.format(root=root) for a in args)])
    err = capsys.readouterr().err
    assert code == status and message in err and "Traceback" not in err


def test_undecodable_video(checkpoint, capsys):
    root, ckpt, _ = checkpoint
    bad = root / "bad.webm"
    bad.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(200))
    assert explain.main([str(bad), "--checkpoint", str(ckpt), "--out", str(root / "x.gif")]) == 1
    err = capsys.readouterr().err
    assert "bad.webm" in err and "cannot open video" in err and not (root / "x.gif").exists()
