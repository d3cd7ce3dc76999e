"""Read a whole split through the data pipeline and report what is bad: ``vov3d data check``.

Run it before a long training run: every item is decoded, sampled and transformed exactly as in
training or testing, with bad samples reported (not replaced), so that the report lists each bad
file once with its error.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from vov3d.data.build import build_dataset
from vov3d.data.clip_dataset import ClipDataset
from vov3d.data.loader import build_loader, set_epoch


def check_splits(
    dataset_format: str,
    data_dir: str | Path,
    splits: Sequence[str] = ("train", "val", "test"),
    *,
    path_prefix: str | Path = "",
    seed: int = 0,
    batch_size: int = 8,
    num_workers: int = 2,
) -> Iterator[dict[str, Any]]:
    """The :func:`check_dataset` summary of each split, opened with :func:`build_dataset`."""
    for split in splits:
        dataset = build_dataset(dataset_format, data_dir, split, seed=seed, path_prefix=path_prefix)
        yield check_dataset(dataset, batch_size=batch_size, num_workers=num_workers)


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
