"""The per-video predictions file (spec §9.5; the original pickles the labels twice, §11.10)."""

from __future__ import annotations

import json

import pytest
import torch

from vov3d.engine.predictions import read_predictions, write_predictions

SCORES = torch.tensor(
    [
        [0.1, 2.5, 0.3, 0.05, 0.0, 0.05],
        [1.0, 0.2, 0.3, 0.4, 0.6, 0.5],
    ]
)
NAMES = ["abseiling", "bowling", "cartwheel", "diving", "écrire", "fencing"]


def test_write_and_read(tmp_path):
    path = tmp_path / "out" / "predictions.jsonl"
    write_predictions(path, ["a/v1.mp4", tmp_path / "v2.webm"], torch.tensor([1, 4]), SCORES, NAMES, top_k=3)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {
        "video": "a/v1.mp4",
        "label": 1,
        "label_name": "bowling",
        "top_ids": [1, 2, 0],
        "top_names": ["bowling", "cartwheel", "abseiling"],
        "top_scores": pytest.approx([2.5, 0.3, 0.1]),
    }
    records = read_predictions(path)
    assert records[0] == first
    assert records[1]["video"] == str(tmp_path / "v2.webm")
    assert records[1]["label_name"] == "écrire"
    assert records[1]["top_ids"] == [0, 4, 5]
    assert records[1]["top_scores"] == pytest.approx([1.0, 0.6, 0.5])
    assert not [p for p in path.parent.iterdir() if p.name != "predictions.jsonl"]  # no temporary left


def test_defaults_unknown_labels_and_no_names(tmp_path):
    path = tmp_path / "p.jsonl"
    write_predictions(path, ["x", "y"], [None, -1], SCORES, None)
    records = read_predictions(path)
    assert [len(r["top_ids"]) for r in records] == [5, 5]
    assert records[0]["label"] is None and records[0]["label_name"] is None and records[0]["top_names"] == [None] * 5
    write_predictions(path, ["x", "y"], [0, 1], SCORES, NAMES, top_k=50)  # replaces the file
    assert [len(r["top_ids"]) for r in read_predictions(path)] == [6, 6]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "p.jsonl"
    write_predictions(path, ["x", "y"], [0, 1], SCORES, NAMES)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="2 class names for 6 classes"):
        write_predictions(path, ["x", "y"], [0, 1], SCORES, NAMES[:2])
    with pytest.raises(ValueError, match="2 score rows, 1 video paths and 2 labels"):
        write_predictions(path, ["x"], [0, 1], SCORES, NAMES)
    with pytest.raises(TypeError):  # fails half-way through writing: the old file stays whole
        write_predictions(path, ["x", 3], [0, 1], SCORES, NAMES)  # type: ignore[list-item]
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.jsonl"]


def test_reading_a_bad_file_names_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    write_predictions(path, ["x", "y"], [0, 1], SCORES, NAMES)
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(ValueError, match=r"p.jsonl, line 3: not JSON"):
        read_predictions(path)
    path.write_text('{"video": "x"}\n')
    with pytest.raises(ValueError, match="line 1: not a prediction record"):
        read_predictions(path)
