"""Video data: datasets for Kinetics and Something-Something V1/V2, decoding, sampling, loaders.

Spec §8. Light to import: names below load their module on first use.

    from vov3d.data import Kinetics, ClipParams, build_loader
    ds = Kinetics("data/k400", "train", ClipParams(), seed=0)
    loader = build_loader(ds, 16, shuffle=True, drop_last=True, num_workers=8, seed=0)
    for epoch in range(epochs):
        set_epoch(loader, epoch)
        for clip, label, index, meta in loader: ...
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClipParams": "params",
    "KINETICS_PARAMS": "params",
    "SOMETHING_PARAMS": "params",
    "ClipDataset": "clip_dataset",
    "Video": "clip_dataset",
    "Kinetics": "kinetics",
    "SomethingSomething": "something",
    "VideoReader": "decoder",
    "build_loader": "loader",
    "set_epoch": "loader",
    "count_failures": "loader",
    "DataError": "errors",
    "AnnotationError": "errors",
    "EmptySplitError": "errors",
    "MediaError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vov3d.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vov3d.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
