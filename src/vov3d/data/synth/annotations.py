"""The annotation files of the synthetic dataset: Kinetics csv, SSv1 csv, SSv2 json, frame lists.

Each writer produces the files the readers of spec §8.2 (Kinetics) and §8.3 (Something-Something)
expect, written atomically; Something-Something has train and validation only, so the val and
test videos both go to validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from vov3d.data.params import SPLITS
from vov3d.data.synth.scenes import CLASS_NAMES, CLASS_TEMPLATES
from vov3d.utils.atomic import atomic_write

SS_FRAME_LIST_HEADER = "original_vido_id video_id frame_id path labels"


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically, so a reader never sees half a file."""
    with atomic_write(path, "w") as f:
        f.write(text)


@dataclass(frozen=True)
class SyntheticVideo:
    """One written video as the annotation files list it."""

    split: str  # train, val or test
    id: str  # e.g. "1000005"
    class_id: int
    placeholders: tuple[str, ...]  # SSv2: the objects that fill the template's [something]s


def write_kinetics_annotations(root: Path, videos: list[SyntheticVideo]) -> list[Path]:
    """``{split}.csv`` (``split/{id}.mp4 label`` lines, spec §8.2) and ``classes.txt``; returns the paths."""
    written = []
    for split in SPLITS:
        path = root / f"{split}.csv"
        write_text(path, "".join(f"{split}/{v.id}.mp4 {v.class_id}\n" for v in videos if v.split == split))
        written.append(path)
    path = root / "classes.txt"
    write_text(path, "".join(f"{name}\n" for name in CLASS_NAMES))
    return written + [path]


def _ss_split(split: str) -> str:
    """SS has train and validation only; the val and test videos both go to validation."""
    return "train" if split == "train" else "validation"


def _write_frame_lists(root: Path, videos: list[SyntheticVideo], frames_per_video: int) -> list[Path]:
    written = []
    for ss_split, name in (("train", "train.csv"), ("validation", "val.csv")):
        lines = [SS_FRAME_LIST_HEADER + "\n"]
        chosen = [v for v in videos if _ss_split(v.split) == ss_split]
        for number, v in enumerate(chosen):
            for frame in range(frames_per_video):
                path = f"frames/{v.id}/{v.id}_{frame + 1:06d}.jpg"
                lines.append(f"{v.id} {number} {frame} {path} {v.class_id}\n")
        write_text(root / name, "".join(lines))
        written.append(root / name)
    return written


def write_ssv1_annotations(root: Path, videos: list[SyntheticVideo], frames_per_video: int) -> list[Path]:
    """Frame lists, ``id;class name`` split files and the label file of SSv1 (spec §8.3); returns the paths."""
    written = _write_frame_lists(root, videos, frames_per_video)
    for ss_split in ("train", "validation"):
        path = root / f"something-something-v1-{ss_split}.csv"
        chosen = [v for v in videos if _ss_split(v.split) == ss_split]
        write_text(path, "".join(f"{v.id};{CLASS_NAMES[v.class_id]}\n" for v in chosen))
        written.append(path)
    path = root / "something-something-v1-labels.csv"
    write_text(path, "".join(f"{name}\n" for name in CLASS_NAMES))
    return written + [path]


def _filled_template(template: str, placeholders: Iterable[str]) -> str:
    text = template
    for name in placeholders:
        start = text.index("[")
        text = text[:start] + name + text[text.index("]", start) + 1 :]
    return text[0].upper() + text[1:]


def write_ssv2_annotations(root: Path, videos: list[SyntheticVideo], frames_per_video: int) -> list[Path]:
    """Frame lists, the JSON split files (with filled-in labels and placeholders) and the label file of SSv2."""
    written = _write_frame_lists(root, videos, frames_per_video)
    for ss_split in ("train", "validation"):
        path = root / f"something-something-v2-{ss_split}.json"
        entries = [
            {
                "id": v.id,
                "label": _filled_template(CLASS_TEMPLATES[v.class_id], v.placeholders).lower(),
                "template": CLASS_TEMPLATES[v.class_id],
                "placeholders": list(v.placeholders),
            }
            for v in videos
            if _ss_split(v.split) == ss_split
        ]
        write_text(path, json.dumps(entries, indent=1) + "\n")
        written.append(path)
    path = root / "something-something-v2-labels.json"
    write_text(path, json.dumps({name: str(i) for i, name in enumerate(CLASS_NAMES)}, indent=1) + "\n")
    return written + [path]
