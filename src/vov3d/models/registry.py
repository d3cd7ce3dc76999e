"""Model registry: ``create_model(name, ...)`` and ``list_models()``, as in timm."""

from __future__ import annotations

from typing import Callable, TypeVar

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}

F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F) -> F:
    """Register a model factory under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is already registered")
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_MODELS)


def create_model(name: str, num_classes: int = 400, **kwargs) -> nn.Module:
    """Build a registered model with freshly initialised weights (spec §5).

    Keyword arguments go to the model's builder (e.g. ``dropout``, ``head_pool``, ``num_frames``,
    ``train_crop_size``); see ``build_vov3d`` and ``build_x3d``.
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(list_models())}")
    return _MODELS[name](num_classes=num_classes, **kwargs)
