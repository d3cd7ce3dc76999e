"""Training-curve and confusion-matrix PNGs, opened with PIL."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from vov3d.engine.plots import DPI, confusion_matrix, plot_confusion_matrix, plot_training_curves

HISTORY = [
    {"epoch": 1, "loss": 2.3, "lr": 0.01, "train_top1_err": 90.0, "train_top5_err": 60.0},
    {"epoch": 2, "loss": 1.9, "lr": 0.05, "train_top1_err": 80.0, "val_top1_err": 85.0},
    {"epoch": 3, "loss": 1.5, "lr": 0.1, "train_top1_err": 65.0},
    {"epoch": 4, "loss": 1.2, "lr": 0.05, "train_top1_err": 55.0, "val_top1_err": 60.0},
]


def _open_png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def _colours(pixels: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(p) for p in pixels.reshape(-1, 3)[::7]}


def test_training_curves_png(tmp_path):
    backend = matplotlib.get_backend()
    path = tmp_path / "curves" / "training_curves.png"
    plot_training_curves(HISTORY, path)
    pixels = _open_png(path)
    assert pixels.shape == (int(3.6 * DPI), 12 * DPI, 3)
    assert len(_colours(pixels)) > 50  # lines, text and axes, not a blank canvas
    # The curves' colours are drawn: matplotlib's tab:blue (train), tab:orange (val), tab:green (lr).
    for colour in ((31, 119, 180), (255, 127, 14), (44, 160, 44)):
        assert (np.abs(pixels.astype(int) - colour).sum(axis=2) < 10).sum() > 20, colour
    assert matplotlib.get_backend() == backend  # the user's backend is untouched
    assert [p.name for p in path.parent.iterdir()] == ["training_curves.png"]


def test_training_curves_draw_the_iterations_in_grey_only_when_given(tmp_path):
    grey = (127, 127, 127)  # matplotlib's tab:gray
    iterations = [{"epoch": i / 4, "loss": 2.5 - i / 10, "lr": 0.01 * i, "train_top1_err": 95.0 - 2 * i} for i in range(1, 17)]
    with_points, without = tmp_path / "with.png", tmp_path / "without.png"
    plot_training_curves(HISTORY, with_points, iterations)
    plot_training_curves(HISTORY, without)
    counts = [(np.abs(_open_png(p).astype(int) - grey).sum(axis=2) < 10).sum() for p in (with_points, without)]
    assert counts[0] > counts[1] + 80  # (text and antialiased edges have some grey pixels too)


def test_training_curves_without_validation_has_no_orange(tmp_path):
    path = tmp_path / "c.png"
    plot_training_curves([{k: v for k, v in e.items() if not k.startswith("val")} for e in HISTORY], path)
    pixels = _open_png(path).astype(int)
    assert (np.abs(pixels - (255, 127, 14)).sum(axis=2) < 10).sum() == 0
    with pytest.raises(ValueError, match="history is empty"):
        plot_training_curves([], path)


def test_confusion_matrix_counts():
    preds = torch.tensor([0, 1, 1, 2, 2, 2, 0])
    labels = torch.tensor([0, 1, 2, 2, 2, 0, 0])
    expected = [
        [2, 0, 1],  # label 0: predicted 0, 0, 2
        [0, 1, 0],
        [0, 1, 2],  # label 2: predicted 1, 2, 2
    ]
    assert confusion_matrix(preds, labels, 3).tolist() == expected
    assert confusion_matrix(preds, labels, 4)[3].tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match=r"a prediction is outside 0..1"):
        confusion_matrix(preds, labels, 2)
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        confusion_matrix(preds[:3], labels[:2], 3)


@pytest.mark.parametrize("num_classes", [3, 60])
def test_confusion_matrix_png(tmp_path, num_classes):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(num_classes, (200,), generator=g)
    preds = torch.where(torch.rand(200, generator=g) < 0.7, labels, torch.randint(num_classes, (200,), generator=g))
    matrix = confusion_matrix(preds, labels, num_classes)
    path = tmp_path / "confusion_matrix.png"
    plot_confusion_matrix(matrix, [f"class {i}" for i in range(num_classes)], path)
    pixels = _open_png(path)
    side = min(16.0, max(5.0, 0.3 * num_classes + 2.0))
    assert pixels.shape == (int(round(side * DPI)), int(round((side + 1.5) * DPI)), 3)
    assert len(_colours(pixels)) > 20


def test_confusion_matrix_png_bad_names(tmp_path):
    with pytest.raises(ValueError, match="2 class names for a 3x3"):
        plot_confusion_matrix(torch.eye(3), ["a", "b"], tmp_path / "m.png")
