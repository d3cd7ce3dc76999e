"""Kinetics: ``{split}.csv`` of ``path label`` lines, videos decoded with PyAV (spec §8.2)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vov3d.data import decoder, sampling
from vov3d.data.annotations import iter_lines, resolve_path
from vov3d.data.clip_dataset import ClipDataset, Video
from vov3d.data.errors import AnnotationError, EmptySplitError
from vov3d.data.params import ClipParams, check_split

logger = logging.getLogger(__name__)


def read_kinetics_csv(
    csv_path: str | Path,
    *,
    separator: str = " ",
    path_prefix: str | Path = "",
    num_classes: int | None = None,
) -> list[tuple[str, int]]:
    """(video path, label) of every line of a Kinetics csv.

    A line is ``path<separator>label``; the label is the text after the *last* separator, so paths
    may contain the separator (the original allows exactly two fields). Paths are resolved with
    :func:`~vov3d.data.annotations.resolve_path`.
    """
    if not separator:
        raise ValueError("the path/label separator must not be empty")
    videos = []
    for number, line in iter_lines(csv_path):
        path, sep, label_text = line.rpartition(separator)
        path = path.strip()
        if not sep or not path:
            raise AnnotationError(csv_path, number, f"expected 'path{separator}label', got {line!r}")
        try:
            label = int(label_text.strip())
        except ValueError:
            raise AnnotationError(
                csv_path, number, f"label {label_text!r} is not an integer class id (line {line!r})"
            ) from None
        if label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise AnnotationError(csv_path, number, f"label {label} out of range {bound}")
        videos.append((resolve_path(path, path_prefix, csv_path), label))
    return videos


class Kinetics(ClipDataset):
    """Kinetics-style video classification data (spec §8.2).

    Reads ``data_dir/{split}.csv`` (or `annotation_file`). The test split reads ``test.csv`` as
    the original does, falling back to ``val.csv`` when there is no ``test.csv`` (§11.11).
    train/val: one random clip per video (val uses the train augmentation, as the original);
    test: NUM_ENSEMBLE_VIEWS × NUM_SPATIAL_CROPS deterministic views per video.
    """

    native_channel_order = "rgb"  # PyAV to_rgb (§8.2)

    def __init__(
        self,
        data_dir: str | Path,
        split: str,
        params: ClipParams = ClipParams(),
        *,
        path_prefix: str | Path = "",
        separator: str = " ",
        num_classes: int | None = None,
        annotation_file: str | Path | None = None,
        seed: int = 0,
        on_error: str | None = None,
        decoder_threads: int = 1,
    ) -> None:
        check_split(split)
        if annotation_file is None:
            annotation_file = Path(data_dir) / f"{split}.csv"
            if split == "test" and not annotation_file.exists():
                fallback = Path(data_dir) / "val.csv"
                if fallback.exists():
                    logger.info("%s not found; testing on %s", annotation_file, fallback)
                    annotation_file = fallback
        self.annotation_file = Path(annotation_file)
        self.decoder_threads = decoder_threads
        entries = read_kinetics_csv(
            self.annotation_file, separator=separator, path_prefix=path_prefix, num_classes=num_classes
        )
        if not entries:
            raise EmptySplitError(f"{self.annotation_file}: no videos in the {split!r} split (no annotation lines)")
        videos = [Video(path=p, label=label) for p, label in entries]
        super().__init__(
            videos, split, params, seed=seed, on_error=on_error, num_temporal_views=params.num_ensemble_views
        )

    def _temporal_view_for_eval(self) -> int:
        return sampling.RANDOM  # Kinetics val: random clips, like train (§8.2)

    def load_frames(self, video: Video, temporal_view: int, rng: np.random.Generator) -> np.ndarray:
        p = self.params

        def index_fn(num_video_frames: int, fps: float) -> np.ndarray:
            return sampling.kinetics_indices(
                num_video_frames, fps, p.num_frames, p.sampling_rate, p.target_fps,
                temporal_view, self.num_temporal_views, rng,
            )

        frames, _ = decoder.read_clip(video.path, index_fn, threads=self.decoder_threads)
        return frames
