"""Read a whole split through the data pipeline and report what is bad: ``vov3d data check``.

Run it before a long training run: every item is decoded, sampled and transformed exactly as in
training or testing, with bad samples reported (not replaced), so that the report lists each bad
file once with its error.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vov3d.data.clip_dataset import ClipDataset
from vov3d.data.loader import build_loader, set_epoch
from vov3d.data.params import KINETICS_PARAMS, SOMETHING_PARAMS

DATASET_FORMATS = ("kinetics", "ssv1", "ssv2", "ssv2-video")


def open_dataset(data_dir: str | Path, dataset_format: str, split: str, **kwargs: Any) -> ClipDataset:
    """A dataset of one of ``DATASET_FORMATS`` with the original's clip parameters for it.

    ``ssv2-video`` reads the ``.webm`` files directly; ``ssv1``/``ssv2`` read extracted frames.
    Keyword arguments go to the dataset class (e.g. ``params``, ``seed``, ``on_error``).
    """
    if dataset_format == "kinetics":
        from vov3d.data.kinetics import Kinetics

        return Kinetics(data_dir, split, kwargs.pop("params", KINETICS_PARAMS), **kwargs)
    if dataset_format in ("ssv1", "ssv2", "ssv2-video"):
        from vov3d.data.something import SomethingSomething

        version = 1 if dataset_format == "ssv1" else 2
        source = "video" if dataset_format == "ssv2-video" else "frames"
        params = kwargs.pop("params", SOMETHING_PARAMS)
        return SomethingSomething(data_dir, split, params, version=version, source=source, **kwargs)
    raise ValueError(f"unknown dataset format {dataset_format!r}; expected one of {', '.join(DATASET_FORMATS)}")


def check_dataset(dataset: ClipDataset, batch_size: int = 8, num_workers: int = 2) -> dict[str, Any]:
    """Load every item of ``dataset`` once (epoch 0) and summarise: counts, bad files, clips/s."""
    dataset.on_error = "report"
    loader = build_loader(dataset, batch_size, shuffle=False, drop_last=False, num_workers=num_workers)
    set_epoch(loader, 0)
    bad: dict[str, str] = {}
    items, start, shape = 0, time.perf_counter(), None
    for clips, _, _, meta in loader:
        items += clips.shape[0]
        shape = list(clips.shape[1:])
        for path, error in zip(meta["path"], meta["error"]):
            if error:
                bad.setdefault(path, error)
    seconds = time.perf_counter() - start
    return {
        "split": dataset.split,
        "videos": dataset.num_videos,
        "items": items,
        "views_per_video": dataset.views_per_video,
        "clip_shape": shape,
        "bad_videos": len(bad),
        "bad": [{"path": p, "error": e} for p, e in sorted(bad.items())],
        "seconds": round(seconds, 2),
        "clips_per_second": round(items / seconds, 2) if seconds > 0 else None,
    }
