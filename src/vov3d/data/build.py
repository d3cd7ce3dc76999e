"""One entry point for every dataset format: ``build_dataset("kinetics" | "ssv1" | "ssv2" | "ssv2-video", ...)``.

Spec §8.2 (Kinetics) and §8.3 (Something-Something). The config layer and ``vov3d data check`` both
open datasets through here, so a format name means the same thing everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vov3d.data.clip_dataset import ClipDataset
from vov3d.data.params import KINETICS_PARAMS, SOMETHING_PARAMS, ClipParams

DATASET_FORMATS = ("kinetics", "ssv1", "ssv2", "ssv2-video")
"""kinetics: ``{split}.csv`` + videos; ssv1/ssv2: label files + extracted JPEG frames; ssv2-video: the ``.webm`` files."""


def build_dataset(
    dataset_format: str,
    data_dir: str | Path,
    split: str,
    params: ClipParams | None = None,
    seed: int = 0,
    path_prefix: str | Path = "",
    on_error: str | None = None,
    **kwargs: Any,
) -> ClipDataset:
    """The dataset of `split` in `data_dir`, read as `dataset_format` (one of ``DATASET_FORMATS``).

    params: the clip parameters; None = the original's values for the format (``KINETICS_PARAMS``
    or ``SOMETHING_PARAMS``, spec §7.3). path_prefix: DATA.PATH_PREFIX, prepended to relative
    paths in the annotation files (for ssv2-video: the folder of the videos). on_error: None = the
    split's default ("replace" for train, "report" otherwise), see :class:`ClipDataset`. Other
    keyword arguments go to the dataset class (:class:`~vov3d.data.Kinetics` or
    :class:`~vov3d.data.SomethingSomething`).
    """
    common = {"seed": seed, "path_prefix": path_prefix, "on_error": on_error, **kwargs}
    if dataset_format == "kinetics":
        from vov3d.data.kinetics import Kinetics

        return Kinetics(data_dir, split, KINETICS_PARAMS if params is None else params, **common)
    if dataset_format in ("ssv1", "ssv2", "ssv2-video"):
        from vov3d.data.something import SomethingSomething

        version = 1 if dataset_format == "ssv1" else 2
        source = "video" if dataset_format == "ssv2-video" else "frames"
        return SomethingSomething(
            data_dir, split, SOMETHING_PARAMS if params is None else params, version=version, source=source, **common
        )
    raise ValueError(f"unknown dataset format {dataset_format!r}; expected one of: {', '.join(DATASET_FORMATS)}")
