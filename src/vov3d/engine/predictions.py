"""Per-video predictions of a test run, as JSON lines (spec §9.5, TEST.SAVE_RESULTS_PATH).

The original pickles ``[all_labels, all_labels]`` instead of the predictions and the labels (spec
§11.10), so its file holds no predictions at all. Here each line is one video::

    {"video": "a/b.mp4", "label": 3, "label_name": "bowling", "top_ids": [3, 7, ...],
     "top_names": ["bowling", ...], "top_scores": [2.71, ...]}

with the top-k classes by score, highest first. The file is replaced atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import torch

from vov3d.utils.atomic import atomic_write

FIELDS = ("video", "label", "label_name", "top_ids", "top_names", "top_scores")


def write_predictions(
    path: str | os.PathLike[str],
    video_paths: Sequence[str | os.PathLike[str]],
    labels: Sequence[int | None] | torch.Tensor,
    scores: torch.Tensor,
    class_names: Sequence[str] | None,
    top_k: int = 5,
) -> None:
    """Write one JSON line per video: path, label id and name, top-``top_k`` class ids, names and scores.

    ``scores`` (num_videos, num_classes) are written as given (the ensemble's summed view
    probabilities, spec §9.5); ``top_k`` larger than the number of classes lists every class. A
    label of ``None`` or ``-1`` (unknown) is written as ``null``. ``class_names`` of ``None`` leaves
    the names ``null``.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be (videos, classes), got shape {tuple(scores.shape)}")
    num_videos, num_classes = scores.shape
    label_list = labels.tolist() if isinstance(labels, torch.Tensor) else list(labels)
    if len(video_paths) != num_videos or len(label_list) != num_videos:
        raise ValueError(f"{num_videos} score rows, {len(video_paths)} video paths and {len(label_list)} labels: they must match")
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    values, ids = torch.topk(scores.detach().to("cpu", torch.float64), min(top_k, num_classes), dim=1)

    def name(i: int | None) -> str | None:
        return None if class_names is None or i is None else str(class_names[i])

    with atomic_write(path, "w") as f:
        for video, label, top_values, top_ids in zip(video_paths, label_list, values.tolist(), ids.tolist()):
            label = None if label is None or int(label) < 0 else int(label)
            record = {
                "video": os.fspath(video),
                "label": label,
                "label_name": name(label),
                "top_ids": top_ids,
                "top_names": [name(i) for i in top_ids],
                "top_scores": top_values,
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_predictions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a file written by :func:`write_predictions`, in order.

    A line that is not such a record is a ``ValueError`` naming the file and line.
    """
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {number}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict) or any(k not in record for k in FIELDS):
                raise ValueError(f"{path}, line {number}: not a prediction record (expected the keys {', '.join(FIELDS)})")
            records.append(record)
    return records
