"""Something-Something V1 and V2 (spec §8.3): one class, the versions differ only in label files.

Frames come from extracted JPEG folders listed in the frame lists ``train.csv`` / ``val.csv``
(source="frames", as the original), or straight from the ``{id}.webm`` files (source="video"),
sampled on the 30 fps grid the original extraction (``ffmpeg -r 30``) produces, so no extraction
step is needed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from vov3d.data import decoder, frames, sampling
from vov3d.data.annotations import iter_lines, read_json, resolve_path
from vov3d.data.clip_dataset import ClipDataset, Video
from vov3d.data.errors import AnnotationError, EmptySplitError
from vov3d.data.params import SOMETHING_PARAMS, ClipParams, check_split

logger = logging.getLogger(__name__)

FRAME_LIST_HEADER = "original_vido_id"  # sic, the frame lists' spelling


def label_file(version: int) -> str:
    """The class-name file of a version."""
    return {1: "something-something-v1-labels.csv", 2: "something-something-v2-labels.json"}[_check_version(version)]


def annotation_file(version: int, split: str) -> str:
    """The video/label file of a split; val and test both read the validation file (§8.3)."""
    part = "train" if check_split(split) == "train" else "validation"
    ext = "csv" if _check_version(version) == 1 else "json"
    return f"something-something-v{version}-{part}.{ext}"


def frame_list_file(split: str) -> str:
    """The frame list of a split: train.csv for train, val.csv for val and test (§8.3)."""
    return "train.csv" if check_split(split) == "train" else "val.csv"


def _check_version(version: int) -> int:
    if version not in (1, 2):
        raise ValueError(f"Something-Something version must be 1 or 2, got {version!r}")
    return version


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


def read_ssv1_labels(path: str | Path) -> dict[str, int]:
    """SSv1 class names, one a line; class id = 0-based line number among non-blank lines."""
    labels: dict[str, int] = {}
    for number, line in iter_lines(path):
        name = _unquote(line)
        if name in labels:
            raise AnnotationError(path, number, f"class {name!r} is listed twice")
        labels[name] = len(labels)
    if not labels:
        raise AnnotationError(path, 0, "no class names in the file")
    return labels


def read_ssv1_annotations(path: str | Path, labels: dict[str, int]) -> list[tuple[str, int]]:
    """(video id, class id) of the ``video_id;class name`` lines of an SSv1 split file.

    Names are compared without line endings (the original keeps the ``\\n`` and so mislabels a
    last line without one or CRLF files, §11.12).
    """
    out = []
    for number, line in iter_lines(path):
        video_id, sep, name = line.partition(";")
        video_id, name = video_id.strip(), _unquote(name.strip())
        if not sep or not video_id or not name:
            raise AnnotationError(path, number, f"expected 'video_id;class name', got {line!r}")
        if name not in labels:
            raise AnnotationError(path, number, f"class {name!r} is not in the label file")
        out.append((video_id, labels[name]))
    return out


def read_ssv2_labels(path: str | Path) -> dict[str, int]:
    """SSv2 ``{template: "id"}`` label file."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise AnnotationError(path, 0, 'expected a non-empty JSON object {"template": "class id"}')
    labels = {}
    for template, value in data.items():
        try:
            labels[template] = int(value)
        except (TypeError, ValueError):
            raise AnnotationError(path, 0, f"class id {value!r} of {template!r} is not an integer") from None
    return labels


def read_ssv2_annotations(path: str | Path, labels: dict[str, int]) -> list[tuple[str, int]]:
    """(video id, class id) of an SSv2 split file: a JSON list of ``{"id", "template", ...}``.

    Square brackets are removed from the template before the lookup (§8.3).
    """
    data = read_json(path)
    if not isinstance(data, list):
        raise AnnotationError(path, 0, 'expected a JSON list of {"id": ..., "template": ...} objects')
    out = []
    for number, entry in enumerate(data):
        where = f"entry {number}"
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            raise AnnotationError(path, 0, f"{where}: expected an object with 'id' and 'template', got {entry!r:.200}")
        template = str(entry["template"]).replace("[", "").replace("]", "")
        if template not in labels:
            raise AnnotationError(
                path, 0, f"{where} (id {entry['id']}): template {template!r} is not in the label file"
            )
        out.append((str(entry["id"]), labels[template]))
    return out


def read_frame_list(path: str | Path, path_prefix: str | Path = "") -> dict[str, list[str]]:
    """Frame paths of each video from a frame list, in file order (§8.3).

    Header ``original_vido_id video_id frame_id path labels``, then rows of 5 space-separated
    columns; only the video name (column 0) and frame path (column 3) are used.
    """
    videos: dict[str, list[str]] = {}
    for number, line in iter_lines(path):
        row = line.split()
        if number == 1 and row and row[0] in (FRAME_LIST_HEADER, "original_video_id"):
            continue
        if len(row) != 5:
            raise AnnotationError(
                path, number,
                f"expected 5 space-separated columns 'original_vido_id video_id frame_id path labels', got {len(row)}",
            )
        videos.setdefault(row[0], []).append(resolve_path(row[3], path_prefix, path))
    return videos


class SomethingSomething(ClipDataset):
    """Something-Something V1/V2 clips (spec §8.3).

    Reads from `data_dir` the label file and split file of `version` and, for source="frames",
    the frame list (train.csv / val.csv). source="video" reads ``{video_dir}/{id}{video_extension}``
    (video_dir defaults to `path_prefix`, else ``data_dir/20bn-something-something-v2`` or
    ``data_dir/videos`` if one exists, else `data_dir`). Segment-based sampling: train draws
    one random frame a segment; val takes the segment centres; test takes NUM_ENSEMBLE_VIEWS
    deterministic temporal views × NUM_SPATIAL_CROPS crops (the original's test frames are
    random, §11.12). Channels follow the original's cv2 reader: BGR unless REVERSE_INPUT_CHANNEL.
    """

    native_channel_order = "bgr"

    def __init__(
        self,
        data_dir: str | Path,
        split: str,
        params: ClipParams = SOMETHING_PARAMS,
        *,
        version: int = 2,
        source: str = "frames",
        path_prefix: str | Path = "",
        video_dir: str | Path | None = None,
        video_extension: str = ".webm",
        frames_fps: float = 30.0,
        seed: int = 0,
        on_error: str | None = None,
        decoder_threads: int = 1,
    ) -> None:
        check_split(split)
        _check_version(version)
        if source not in ("frames", "video"):
            raise ValueError(f"source must be 'frames' or 'video', got {source!r}")
        data_dir = Path(data_dir)
        self.version = version
        self.source = source
        self.frames_fps = float(frames_fps)
        self.decoder_threads = decoder_threads
        self.label_file = data_dir / label_file(version)
        self.annotation_file = data_dir / annotation_file(version, split)
        if version == 1:
            classes = read_ssv1_labels(self.label_file)
            annotated = read_ssv1_annotations(self.annotation_file, classes)
        else:
            classes = read_ssv2_labels(self.label_file)
            annotated = read_ssv2_annotations(self.annotation_file, classes)
        self.class_names = sorted(classes, key=classes.__getitem__)
        if not annotated:
            raise EmptySplitError(f"{self.annotation_file}: no videos in the {split!r} split")
        if source == "video":
            root = Path(video_dir) if video_dir is not None else self._default_video_dir(data_dir, path_prefix)
            videos = [Video(path=str(root / f"{vid}{video_extension}"), label=label) for vid, label in annotated]
        else:
            self.frame_list = data_dir / frame_list_file(split)
            listed = read_frame_list(self.frame_list, path_prefix)
            if not listed:
                raise EmptySplitError(f"{self.frame_list}: the frame list of the {split!r} split has no frames")
            videos, missing = [], []
            for vid, label in annotated:
                paths = listed.get(vid)
                if paths:
                    videos.append(Video(path=os.path.dirname(paths[0]), label=label, frames=tuple(paths)))
                else:
                    missing.append(vid)
                    videos.append(Video(path=vid, label=label, error=f"video {vid} has no frames in {self.frame_list}"))
            if missing:
                logger.warning(
                    "%d of %d videos of %s have no frames in %s (first: %s); they count as bad data",
                    len(missing), len(annotated), self.annotation_file, self.frame_list, ", ".join(missing[:5]),
                )
        super().__init__(
            videos, split, params, seed=seed, on_error=on_error, num_temporal_views=params.num_ensemble_views
        )

    @staticmethod
    def _default_video_dir(data_dir: Path, path_prefix: str | Path) -> Path:
        """PATH_PREFIX if set, else the first existing of ``20bn-something-something-v2/`` (the
        official archive's folder) and ``videos/`` in data_dir, else data_dir itself."""
        if path_prefix:
            return Path(path_prefix)
        for name in ("20bn-something-something-v2", "videos"):
            if (data_dir / name).is_dir():
                return data_dir / name
        return data_dir

    def load_frames(self, video: Video, temporal_view: int, rng: np.random.Generator) -> np.ndarray:
        t, n = self.params.num_frames, self.num_temporal_views
        if video.frames is not None:
            index = sampling.segment_indices(len(video.frames), t, temporal_view, n, rng)
            return frames.read_frames([video.frames[i] for i in index])
        with decoder.VideoReader(video.path, threads=self.decoder_threads) as reader:
            if reader.duration is None:  # nothing tells the length: decode all, sample native frames
                everything = reader.read_all()
                return everything[sampling.segment_indices(len(everything), t, temporal_view, n, rng)]
            length = max(1, int(round(reader.duration * self.frames_fps)))
            index = sampling.segment_indices(length, t, temporal_view, n, rng)
            return reader.read_times(index / self.frames_fps)
