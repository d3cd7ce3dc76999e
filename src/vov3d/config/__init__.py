"""Configs: yacs defaults with the original's keys, loading with clear errors, and the builders (spec §7).

    from vov3d.config import load_config, builders
    cfg = load_config("configs/Kinetics/vov3d/vov3d_M.yaml", ["NUM_GPUS", "1", "TRAIN.BATCH_SIZE", "16"])
    model = builders.build_model(cfg)

Light to import: names below load their module on first use (the builders import torch lazily).
"""

from __future__ import annotations

from vov3d._lazy import lazy_exports

_EXPORTS = {
    "get_cfg": "defaults",
    "load_config": "loading",
    "dump_config": "loading",
    "all_keys": "loading",
    "ConfigError": "errors",
    "ConfigProblem": "errors",
    "check_world": "validation",
    "validate": "validation",
    "builders": None,
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name == "builders":
        import importlib

        return importlib.import_module("vov3d.config.builders")
    return _lazy_getattr(name)


_lazy_getattr, __dir__ = lazy_exports(
    __name__, {name: f"vov3d.config.{module}" for name, module in _EXPORTS.items() if module is not None}
)
