"""Video data: datasets for Kinetics and Something-Something V1/V2, decoding, sampling, loaders.

Spec §8. Light to import: names below load their module on first use.

    from vov3d.data import build_dataset, build_loader, set_epoch
    ds = build_dataset("kinetics", "data/k400", "train", seed=0)  # or Kinetics(...), SomethingSomething(...)
    loader = build_loader(ds, 16, shuffle=True, drop_last=True, num_workers=8, seed=0)
    for epoch in range(epochs):
        set_epoch(loader, epoch)
        for clip, label, index, meta in loader: ...
"""

from __future__ import annotations

from vov3d._lazy import lazy_exports

_EXPORTS = {
    "ClipParams": "params",
    "KINETICS_PARAMS": "params",
    "SOMETHING_PARAMS": "params",
    "ClipDataset": "clip_dataset",
    "Video": "clip_dataset",
    "Kinetics": "kinetics",
    "SomethingSomething": "something",
    "VideoReader": "decoder",
    "build_dataset": "build",
    "DATASET_FORMATS": "build",
    "build_loader": "loader",
    "set_epoch": "loader",
    "count_failures": "loader",
    "DataError": "errors",
    "AnnotationError": "errors",
    "EmptySplitError": "errors",
    "MediaError": "errors",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, {name: f"vov3d.data.{module}" for name, module in _EXPORTS.items()})
