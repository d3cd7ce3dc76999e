"""The original release's weights by name, as timm does it: ``create_model("vov3d_l", pretrained="k400")``.

Each file of ``shared/spec/weights.md`` is a tag of the model it holds (``vov3d_l.k400``,
``x3d_m.ssv2_f16``, ``vov3d_m_v2.ssv1_f32_finetune``...; ``format_table()`` lists them with their
reported accuracy). A file is downloaded once into torch.hub's cache (``torch.hub.get_dir()/checkpoints``,
i.e. ``$TORCH_HOME/hub/checkpoints``), read with ``torch.load(weights_only=True)`` and loaded strictly.
After its first successful load the file's sha256 is recorded beside it (``FILE.sha256``); a later
load checks it, so a cache file corrupted since is detected and downloaded again.

The Something-Something VoV3D-M files (``ssv1_f16``, ``ssv1_f32``, ``ssv2_f16``, ``ssv2_f32``) were
published under the same URLs before and after VoV3D-M was redefined, so they may hold either
``vov3d_m`` or ``vov3d_m_v2``. Which one is decided from the file's tensor names and shapes, never
from its name: ``create_model("vov3d_m", pretrained="ssv2_f16")`` builds the definition the file holds
and logs a warning when that is not the one asked for; ``load_pretrained`` into an already built model
of the other definition raises ``PretrainedError``.

Tests and mirrors: ``VOV3D_PRETRAINED_URL_PREFIX=file:///some/dir`` (or ``https://mirror/...``) makes
every URL ``PREFIX/FILENAME``; ``url=`` overrides one call. Offline, the error names the URL and how to
pass a local file instead. Licence of the weights: CC-BY-NC 4.0 (the original authors').
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from vov3d.checkpoint import CheckpointError, extract_state_dict, load_checkpoint, read_checkpoint
from vov3d.models import registry
from vov3d.utils.atomic import atomic_write

logger = logging.getLogger(__name__)

URL_PREFIX_ENV = "VOV3D_PRETRAINED_URL_PREFIX"
LICENCE = "CC-BY-NC 4.0"
_DROPBOX = "https://dl.dropbox.com/s/"
_AMBIGUOUS_M = ("vov3d_m", "vov3d_m_v2")


class PretrainedError(CheckpointError):
    """Released weights that cannot be found, downloaded, verified or loaded."""


@dataclass(frozen=True)
class PretrainedWeights:
    """One released file: where it is, what it holds and what the original README reports for it."""

    tag: str
    models: tuple[str, ...]  # model definitions the file may hold (two for the ambiguous SS VoV3D-M files)
    url: str
    data: str  # SSv1 | SSv2 | K400
    frames: int
    num_classes: int
    top1: float
    top5: float
    release: str  # the original README version that reports the numbers
    config: str  # the original config (configs/...)

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def names(self) -> list[str]:
        """``model.tag`` names under which the file is listed."""
        return [f"{m}.{self.tag}" for m in self.models]

    @property
    def something_something(self) -> bool:
        return self.data.startswith("SS")


def _w(tag, models, path, data, frames, top1, top5, config, release="Apr 2021") -> PretrainedWeights:
    models = (models,) if isinstance(models, str) else tuple(models)
    return PretrainedWeights(tag, models, _DROPBOX + path, data, frames, 400 if data == "K400" else 174,
                             top1, top5, release, config)


_WEIGHTS: tuple[PretrainedWeights, ...] = (
    _w("ssv1_f16", "x3d_m", "lb9uvj4tl19xzmn/x3d_M_ssv1.pth", "SSv1", 16, 46.4, 75.3, "SSv1/x3d/x3d_M"),
    _w("ssv1_f16", _AMBIGUOUS_M, "usbcudmhpknqvtd/vov3d_M_f16_ssv1.pth", "SSv1", 16, 49.0, 78.2, "SSv1/vov3d/vov3d_M_F16"),
    _w("ssv1_f32", _AMBIGUOUS_M, "fvet69zyeswe25v/vov3d_M_f32_ssv1.pth", "SSv1", 32, 50.1, 79.2, "SSv1/vov3d/vov3d_M_F32"),
    _w("ssv1_f32_finetune", "vov3d_m_v2", "7qzdrv7p2l12mor/vov3d_M_f32_finetune_ssv1.pth", "SSv1", 32, 53.3, 81.2,
       "SSv1/vov3d/finetune/vov3d_M_F32_finetune"),
    _w("ssv1_f16", "x3d_l", "yixwwfv6mv2bpnd/x3d_L_ssv1.pth", "SSv1", 16, 47.1, 76.5, "SSv1/x3d/x3d_L"),
    _w("ssv1_f16", "vov3d_l", "bdjam5tyaedkczl/vov3d_L_f16_ssv1.pth", "SSv1", 16, 49.5, 78.0, "SSv1/vov3d/vov3d_L_F16"),
    _w("ssv1_f32", "vov3d_l", "g6lc5sj8h7f2r5v/vov3d_L_f32_ssv1.pth", "SSv1", 32, 50.6, 78.7, "SSv1/vov3d/vov3d_L_F32"),
    _w("ssv1_f32_finetune", "vov3d_l", "4q2fupr3gcht1ik/vov3d_L_f32_finetune_ssv1.pth", "SSv1", 32, 54.7, 82.0,
       "SSv1/vov3d/finetune/vov3d_L_F32_finetune"),
    _w("ssv2_f16", "x3d_m", "b6gjywzrn85sa89/x3d_M_ssv2.pth", "SSv2", 16, 63.1, 88.0, "SSv2/x3d/x3d_M"),
    _w("ssv2_f16", _AMBIGUOUS_M, "hz34ltdl6iukdxc/vov3d_M_f16_ssv2.pth", "SSv2", 16, 63.6, 88.6, "SSv2/vov3d/vov3d_M_F16"),
    _w("ssv2_f32", _AMBIGUOUS_M, "z6qtyjgf0v13jnq/vov3d_M_f32_ssv2.pth", "SSv2", 32, 64.3, 88.9, "SSv2/vov3d/vov3d_M_F32"),
    _w("ssv2_f32_finetune", "vov3d_m_v2", "dpkbx6wjkay7ret/vov3d_M_f32_finetune_ssv2.pth", "SSv2", 32, 65.8, 89.6,
       "SSv2/vov3d/finetune/vov3d_M_F32_finetune"),
    _w("ssv2_f16", "x3d_l", "iaqwbejrkbd7372/x3d_L_ssv2.pth", "SSv2", 16, 62.7, 87.8, "SSv2/x3d/x3d_L"),
    _w("ssv2_f16", "vov3d_l", "678efl8zyrmq7ch/vov3d_L_f16_ssv2.pth", "SSv2", 16, 64.5, 88.7, "SSv2/vov3d/vov3d_L_F16"),
    _w("ssv2_f32", "vov3d_l", "f4330e5htdiwqa5/vov3d_L_f32_ssv2.pth", "SSv2", 32, 65.9, 89.6, "SSv2/vov3d/vov3d_L_F32"),
    _w("ssv2_f32_finetune", "vov3d_l", "sly5orjsi2zl84a/vov3d_L_f32_finetune_ssv2.pth", "SSv2", 32, 67.4, 90.5,
       "SSv2/vov3d/finetune/vov3d_L_F32_finetune"),
    _w("k400", "x3d_m", "s87lnn7ch4a6e47/x3d_M_256e_k400.pth", "K400", 16, 75.1, 92.2, "Kinetics/x3d/X3D_M_256e"),
    _w("k400", "vov3d_m_v2", "8qbewp3teb51jfb/vov3d_M_k400_weight.pth", "K400", 16, 74.7, 92.1, "Kinetics/vov3d/vov3d_M"),
    _w("k400", "vov3d_m", "hpk172nbvm3w5p1/vov3d_M_k400.pth", "K400", 16, 73.9, 91.6, "Kinetics/vov3d/vov3d_M",
       release="Dec 2020"),
    _w("k400", "x3d_l", "jhw5439tyvmtjzp/x3d_L_256e_256scale_k400.pth", "K400", 16, 76.1, 92.6,
       "Kinetics/x3d/X3D_L_256scale_256e"),
    _w("k400", "vov3d_l", "ah2azwbocxro9qa/vov3d_L_k400_weight.pth", "K400", 16, 76.3, 92.9, "Kinetics/vov3d/vov3d_L"),
    _w("k400_dec2020", "vov3d_l", "lzmq8d4dqyj8fj6/vov3d_L_k400.pth", "K400", 16, 76.3, 92.9, "Kinetics/vov3d/vov3d_L",
       release="Dec 2020"),
)

_ALIASES = {"ssv1": "ssv1_f16", "ssv2": "ssv2_f16", "kinetics400": "k400", "kinetics": "k400"}


# ------------------------------------------------------------------------------------- the table


def list_pretrained(name: str | None = None) -> list[str]:
    """``model.tag`` names of the released weights, sorted; only those of model ``name`` if given."""
    names = sorted(n for w in _WEIGHTS for n in w.names)
    if name is not None:
        _check_model_name(name)
        names = [n for n in names if n.split(".", 1)[0] == name]
    return names


def get_pretrained(name: str, tag: str | None = None) -> PretrainedWeights:
    """The released file ``name.tag`` (or ``name`` and ``tag`` apart). Unknown: ValueError listing the tags.

    Aliases: ``ssv1``/``ssv2`` mean the 16-frame files, ``kinetics400`` means ``k400``.
    """
    if tag is None:
        if "." not in name:
            raise ValueError(f"expected 'model.tag' (e.g. 'vov3d_l.k400'), got {name!r}")
        name, tag = name.split(".", 1)
    _check_model_name(name)
    wanted = _ALIASES.get(tag, tag)
    for weights in _WEIGHTS:
        if weights.tag == wanted and name in weights.models:
            return weights
    tags = ", ".join(n.split(".", 1)[1] for n in list_pretrained(name)) or "none"
    raise ValueError(f"unknown pretrained tag {tag!r} for model {name!r}; its tags: {tags} (see `vov3d models --pretrained`)")


def format_table() -> str:
    """The released weights as a text table: tag, model, data, frames, classes, reported top-1/top-5, licence."""
    header = ("tag", "model", "data", "frames", "classes", "top-1", "top-5", "release", "licence", "file")
    rows = [header]
    for w in sorted(_WEIGHTS, key=lambda w: (w.models[0].split("_")[0], w.models, w.data, w.frames, w.tag)):
        model = " or ".join(w.models)
        rows.append((w.tag, model, w.data, str(w.frames), str(w.num_classes), f"{w.top1:.1f}", f"{w.top5:.1f}",
                     w.release, LICENCE, w.filename))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines += [
        "",
        "top-1/top-5: as reported by the original README (test views: SS 2x3, K400 10x3).",
        "'vov3d_m or vov3d_m_v2': the file decides (from its tensors) which definition is built.",
        f"Weights by the original authors, licence {LICENCE} (non-commercial use only).",
        f"Cache: {cache_dir()}; a mirror or local copies: {URL_PREFIX_ENV}=file:///dir.",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- download, cache


def cache_dir() -> Path:
    """Where downloaded weights are kept: ``torch.hub.get_dir()/checkpoints`` (as torch.hub does)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_url(weights: PretrainedWeights, url: str | None = None) -> str:
    """The URL to download ``weights`` from: ``url``, else ``$VOV3D_PRETRAINED_URL_PREFIX/FILENAME``, else the original."""
    if url:
        return url
    prefix = os.environ.get(URL_PREFIX_ENV, "").strip()
    if prefix:
        return prefix.rstrip("/") + "/" + weights.filename
    return weights.url


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _recorded_checksum(path: Path) -> str | None:
    try:
        text = _checksum_path(path).read_text().split()
    except OSError:
        return None
    return text[0] if text else None


def _record_checksum(path: Path) -> None:
    with atomic_write(_checksum_path(path), "w") as f:
        f.write(f"{_sha256(path)}  {path.name}\n")


def _forget(path: Path) -> None:
    for p in (path, _checksum_path(path)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _offline_hint(weights: PretrainedWeights, url: str, path: Path) -> str:
    return (
        f"Offline or blocked? Download {url} elsewhere and pass the file instead: `--checkpoint FILE` on the "
        f"command line, `vov3d.load_checkpoint(model, FILE)` in Python, or copy it to {path} "
        f"(or set {URL_PREFIX_ENV} to a folder URL holding {weights.filename})."
    )


def _download(weights: PretrainedWeights, url: str, path: Path, progress: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s to %s", url, path)
    try:  # download_url_to_file writes a temporary file and renames it: no half file under `path`
        torch.hub.download_url_to_file(url, str(path), progress=progress)
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise PretrainedError(
            f"could not download the {' / '.join(weights.names)} weights from {url}: {reason}\n"
            + _offline_hint(weights, url, path)
        ) from None


def fetch_pretrained(weights: PretrainedWeights, url: str | None = None, progress: bool = True) -> tuple[Path, bool]:
    """The cached file of ``weights``, downloaded if missing. Returns (path, checksum verified).

    A cached file whose recorded sha256 no longer matches is reported (warning) and downloaded again.
    """
    url = weights_url(weights, url)
    path = cache_dir() / weights.filename
    if path.is_file():
        recorded = _recorded_checksum(path)
        if recorded is None:
            return path, False
        actual = _sha256(path)
        if actual == recorded:
            return path, True
        logger.warning(
            "%s: sha256 %s differs from the %s recorded when it was verified (corrupted cache file); "
            "downloading it again from %s", path, actual[:16], recorded[:16], url)
        _forget(path)
        try:
            _download(weights, url, path, progress)
        except PretrainedError as err:
            raise PretrainedError(f"{path}: cached file corrupted (sha256 mismatch), and {err}") from None
        return path, False
    _download(weights, url, path, progress)
    return path, False


def _state_of(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    obj = read_checkpoint(path)
    return obj, extract_state_dict(obj, str(path))


def _read_verified(weights: PretrainedWeights, url: str | None, progress: bool) -> tuple[Path, dict, dict]:
    """Fetch and read the file; an unreadable cached file (not yet verified) is downloaded once more."""
    path, verified = fetch_pretrained(weights, url, progress)
    try:
        obj, state = _state_of(path)
    except CheckpointError as err:
        if verified:
            raise PretrainedError(f"{err}") from None
        logger.warning("%s is not a readable checkpoint (%s); downloading it again", path, err)
        _forget(path)
        path, _ = fetch_pretrained(weights, url, progress)
        try:
            obj, state = _state_of(path)
        except CheckpointError as err2:
            raise PretrainedError(
                f"the file downloaded from {weights_url(weights, url)} is not a PyTorch checkpoint: {err2}"
            ) from None
    return path, obj, state


# ------------------------------------------------------------------------------ models and loading


def _check_model_name(name: str) -> None:
    if name not in registry.list_models():
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(registry.list_models())}")


def _layout(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


@functools.lru_cache(maxsize=32)
def _model_layout(name: str, num_classes: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    # built on the CPU: faster than on the meta device, where every initialiser goes through Python
    return tuple(_layout(registry.create_model(name, num_classes=num_classes).state_dict()).items())


def definitions_matching(state: Mapping[str, torch.Tensor], candidates: tuple[str, ...] | None = None) -> list[str]:
    """Registered models (among ``candidates``) whose state-dict names and shapes equal ``state``'s exactly."""
    projection = state.get("head.projection.weight")
    if projection is None or projection.dim() != 2:
        return []
    layout = tuple(_layout(state).items())
    return [name for name in candidates or tuple(registry.list_models())
            if sorted(_model_layout(name, projection.shape[0])) == sorted(layout)]


def _definition_in_file(weights: PretrainedWeights, state: Mapping[str, torch.Tensor], path: Path) -> str:
    found = definitions_matching(state, weights.models)
    if not found:
        other = definitions_matching(state)
        classes = state["head.projection.weight"].shape[0] if other else 0
        hint = f"the file holds a {other[0]} with {classes} classes" if other else "it matches no registered model"
        raise PretrainedError(
            f"{path}: expected the weights of {' or '.join(weights.models)} ({weights.num_classes} classes), "
            f"but {hint}"
        )
    return found[0]


def create_model(
    name: str,
    num_classes: int | None = None,
    *,
    pretrained: str | None = None,
    url: str | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> nn.Module:
    """``vov3d.models.create_model`` with released weights: ``create_model("vov3d_l", pretrained="k400")``.

    ``name`` may also be ``"model.tag"``. Without ``pretrained`` the model is freshly initialised
    (``num_classes`` defaults to 400). With it, ``num_classes`` defaults to the file's; another number
    keeps the classifier at its initialisation (fine-tuning). For the SS VoV3D-M files the definition
    the file holds is built, with a warning if it is not ``name``. ``url`` overrides the download URL;
    other keyword arguments go to the model's builder. ``num_classes`` stays the second positional
    argument, as in ``vov3d.models.create_model``, so that this function can stand in for it.
    """
    if isinstance(num_classes, str):
        raise TypeError(f"num_classes must be an int; released weights are chosen with pretrained={num_classes!r}")
    if pretrained is None and "." in name:
        name, pretrained = name.split(".", 1)
    if pretrained is None:
        return registry.create_model(name, num_classes=400 if num_classes is None else num_classes, **kwargs)
    weights = get_pretrained(name, pretrained)
    path, obj, state = _read_verified(weights, url, progress)
    definition = _definition_in_file(weights, state, path)
    if definition != name:
        logger.warning("%s holds a %s (decided from its tensors), not a %s: building a %s",
                       path, definition, name, definition)
    classes = weights.num_classes if num_classes is None else num_classes
    model = registry.create_model(definition, num_classes=classes, **kwargs)
    load_checkpoint(model, obj, strict=True, skip_mismatched_classifier=classes != weights.num_classes)
    _record_checksum(path)
    return model


def load_pretrained(model: nn.Module, tag: str, url: str | None = None, progress: bool = True) -> PretrainedWeights:
    """Load released weights into ``model`` strictly. ``tag`` is ``"model.tag"`` or a bare tag.

    A bare tag is looked up under the definition ``model`` is (found from its tensor shapes).
    Raises ValueError for an unknown tag and PretrainedError when the file cannot be fetched or holds
    another model.
    """
    if "." in tag:
        weights = get_pretrained(tag)
    else:
        own = definitions_matching(model.state_dict())
        if not own:
            raise ValueError(f"cannot tell which registered model this {type(model).__name__} is; pass 'model.{tag}'")
        weights = get_pretrained(own[0], tag)
    path, obj, _ = _read_verified(weights, url, progress)
    try:
        load_checkpoint(model, obj, strict=True)
    except CheckpointError as err:
        raise PretrainedError(f"{path} ({weights.names[0]}): {err}") from None
    _record_checksum(path)
    return weights
