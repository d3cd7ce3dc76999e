"""`vov3d predict VIDEO...`: top-k classes with probabilities for ordinary video files (issue 17, item 2).

Each video's views are taken as the test split takes them (``video_clips``: uniform temporal
positions x 1 or 3 crops, spec §8.2/§8.4), run through the prepared model in batches, and their
softmax scores summed (the ``sum`` ensemble of spec §9.5), then divided by the number of views so that
the probabilities sum to 1. A file that cannot be read gets an error line; the other files are still
predicted and the exit status is 1.

This module also holds what the other tasks (export, explain, bench) share: the ``--model``,
``--checkpoint`` and ``--pretrained`` arguments and the model they name (``load_task_model``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from vov3d.checkpoint import CheckpointError, extract_state_dict, load_checkpoint, read_checkpoint
from vov3d.data import DataError
from vov3d.engine.video_clips import SAMPLINGS, ViewSpec, read_views
from vov3d.labels import load_class_names
from vov3d.models import create_model, list_models

logger = logging.getLogger(__name__)

LABELS_OF_DATA = {"K400": "kinetics400", "SSv2": "ssv2"}  # class names shipped for the released weights' data
USER_ERRORS = (ValueError, OSError, DataError, ImportError)
"""Exceptions that carry a message meant for the user (bad path, model, tag, file, missing package)."""


class UsageError(ValueError):
    """A wrong combination of command-line arguments (exit status 2)."""


# ----------------------------------------------------------------------------- the task's model


@dataclass
class TaskModel:
    """A model ready for a task, with what is known about its weights."""

    model: nn.Module  # the pure model, eval mode
    name: str  # registered definition
    source: str  # "random initialisation", the checkpoint path or "model.tag"
    class_names: list[str] | None = None  # from the checkpoint or the released weights' data
    data: str | None = None  # K400 | SSv1 | SSv2 for released weights, or the checkpoint's dataset
    defaults: Mapping[str, Any] | None = None  # clip settings read from the weights (frames, crop, sampling...)

    @property
    def num_classes(self) -> int:
        return int(self.model.head.projection.out_features)


def add_model_arguments(parser: argparse.ArgumentParser, model_required: bool = True) -> None:
    """``--model NAME`` and one of ``--checkpoint FILE`` / ``--pretrained TAG``."""
    parser.add_argument("--model", required=model_required, metavar="NAME",
                        help=f"model definition: {', '.join(list_models())}"
                        + ("" if model_required else " (default: the one the checkpoint holds)"))
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", metavar="FILE", help="weights file (PySlowFast-style checkpoint or state dict)")
    weights.add_argument("--pretrained", metavar="TAG",
                         help="released weights, e.g. k400 or ssv2_f16 (see `vov3d models --pretrained`)")


def _cfg_defaults(cfg: Any) -> dict[str, Any]:
    """Clip settings of an engine checkpoint's ``cfg`` (a YAML dump), as far as it has them."""
    if not isinstance(cfg, str) or not cfg.strip():
        return {}
    try:
        import yaml

        tree = yaml.safe_load(cfg)
    except Exception:  # a cfg we cannot read only loses defaults
        return {}
    if not isinstance(tree, Mapping):
        return {}
    data, test = tree.get("DATA") or {}, tree.get("TEST") or {}
    out: dict[str, Any] = {}
    for key, name in (("NUM_FRAMES", "frames"), ("SAMPLING_RATE", "sampling_rate"), ("TARGET_FPS", "target_fps"),
                      ("TEST_CROP_SIZE", "crop_size"), ("REVERSE_INPUT_CHANNEL", "reverse_channels")):
        if key in data:
            out[name] = data[key]
    for key in ("MEAN", "STD"):
        if isinstance(data.get(key), (list, tuple)) and len(data[key]) == 3:
            out[key.lower()] = tuple(float(v) for v in data[key])
    if isinstance(data.get("CLASS_NAMES"), str) and data["CLASS_NAMES"]:
        out["class_names_file"] = data["CLASS_NAMES"]
    dataset = str(test.get("DATASET") or (tree.get("TRAIN") or {}).get("DATASET") or "").lower()
    if dataset.startswith("ssv") or "something" in dataset:
        out["sampling"] = "segments"
    return out


def checkpoint_class_names(obj: Mapping[str, Any], num_classes: int, names_file: str | None = None) -> list[str] | None:
    """Class names an engine checkpoint carries: ``class_names`` (top level or in ``train_state``), else the
    cfg's DATA.CLASS_NAMES file if it still exists; only a list of ``num_classes`` strings counts."""
    state = obj.get("train_state")
    for names in (obj.get("class_names"), state.get("class_names") if isinstance(state, Mapping) else None):
        if isinstance(names, (list, tuple)) and len(names) == num_classes and all(isinstance(n, str) for n in names):
            return list(names)
    if names_file and Path(names_file).is_file():
        try:
            names = load_class_names(names_file)
        except (OSError, ValueError):
            return None
        return names if len(names) == num_classes else None
    return None


def load_task_model(name: str | None, checkpoint: str | None = None, pretrained: str | None = None) -> TaskModel:
    """The model of ``--model``/``--checkpoint``/``--pretrained``, strictly loaded, in eval mode.

    A checkpoint gives the number of classes (and, with no ``name``, the definition: from its tensors);
    an engine checkpoint's ``class_names`` and ``cfg`` clip settings come along.
    """
    if name is not None and name not in list_models():
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(list_models())}")
    if pretrained is not None:
        from vov3d import pretrained as released

        if name is None:
            raise UsageError("--pretrained needs --model (the tags are per model: `vov3d models --pretrained`)")
        weights = released.get_pretrained(name, pretrained)
        model = released.create_model(name, pretrained=pretrained)
        defined = released.definitions_matching(model.state_dict(), weights.models)
        names = load_class_names(LABELS_OF_DATA[weights.data]) if weights.data in LABELS_OF_DATA else None
        defaults = {"frames": weights.frames}
        if weights.something_something:
            defaults.update(sampling="segments", reverse_channels=True)
        return TaskModel(model.eval(), defined[0] if defined else name, f"{name}.{weights.tag}", names, weights.data,
                         defaults)
    if checkpoint is not None:
        obj = read_checkpoint(checkpoint)
        state = extract_state_dict(obj, str(checkpoint))
        projection = state.get("head.projection.weight")
        if projection is None or projection.dim() != 2:
            raise CheckpointError(f"{checkpoint}: no classifier 'head.projection.weight' (not a VoV3D/X3D checkpoint)")
        if name is None:
            from vov3d.pretrained import definitions_matching

            found = definitions_matching(state)
            if not found:
                raise CheckpointError(f"{checkpoint}: matches no registered model; pass --model NAME")
            name = found[0]
        model = create_model(name, num_classes=int(projection.shape[0]))
        load_checkpoint(model, obj, strict=True)  # another model's file: CheckpointError naming what it holds
        defaults = _cfg_defaults(obj.get("cfg"))
        names = checkpoint_class_names(obj, int(projection.shape[0]), defaults.pop("class_names_file", None))
        return TaskModel(model.eval(), name, str(checkpoint), names, None, defaults)
    if name is None:
        raise UsageError("give --model NAME (and --checkpoint FILE or --pretrained TAG for trained weights)")
    return TaskModel(create_model(name).eval(), name, "random initialisation", None, None, {})


def run_main(prog: str, parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int],
             argv: Sequence[str] | None) -> int:
    """Parse, run, and turn a user's mistake into one error line: status 2 for usage, 1 otherwise."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2, message already printed)
        return int(exit_.code or 0)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return run(args)
    except UsageError as err:
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except USER_ERRORS as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------------------- prediction


def resolve_class_names(task: TaskModel, labels: str | None) -> list[str] | None:
    """``--labels`` if given, else the checkpoint's or the released weights' names, else None (numbers)."""
    names = load_class_names(labels) if labels else task.class_names
    if names is not None and len(names) != task.num_classes:
        source = f"--labels {labels}" if labels else "the checkpoint"
        raise UsageError(f"{source} has {len(names)} class names but the model has {task.num_classes} classes")
    return names


def view_spec(args: argparse.Namespace, task: TaskModel) -> ViewSpec:
    """The views of ``args`` (``--frames`` etc.), defaulting to what the weights were trained with."""
    d = dict(task.defaults or {})
    pick = lambda arg, key, default: arg if arg is not None else d.get(key, default)  # noqa: E731
    return ViewSpec(
        num_frames=int(pick(args.frames, "frames", 16)),
        sampling_rate=int(pick(args.sampling_rate, "sampling_rate", 5)),
        target_fps=float(d.get("target_fps", 30.0)),
        crop_size=int(pick(args.crop_size, "crop_size", 224)),
        num_views=args.views,
        num_crops=args.crops,
        sampling=pick(args.sampling, "sampling", "kinetics"),
        mean=tuple(d.get("mean", (0.45, 0.45, 0.45))),
        std=tuple(d.get("std", (0.225, 0.225, 0.225))),
        reverse_channels=bool(d.get("reverse_channels", False)),
    )


def parse_device(text: str) -> torch.device:
    """``--device``: cpu, cuda or cuda:N, checked to exist here."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UsageError(f"--device must be cpu or cuda[:N], got {text!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (torch.cuda.is_available() is False)")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda[:N], got {text!r}")
    return device


@torch.no_grad()
def predict_views(model: Callable[[torch.Tensor], torch.Tensor], clips: torch.Tensor, batch_size: int,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """Mean of the views' softmax (the sum ensemble, normalised): (classes,) probabilities summing to 1."""
    total = None
    for chunk in clips.split(batch_size):
        probs = model(chunk.to(device)).float().softmax(dim=1).sum(dim=0).cpu()
        total = probs if total is None else total + probs
    return total / clips.shape[0]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vov3d predict",
        description="Top-k classes with probabilities for video files (mp4, webm, avi, mkv, ...).")
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    add_model_arguments(parser, model_required=False)
    parser.add_argument("--labels", metavar="NAME|FILE",
                        help="class names: kinetics400, ssv2 or a file (one a line); default: the checkpoint's "
                             "or the released weights' names, else class numbers")
    parser.add_argument("--views", type=int, default=3, metavar="N", help="temporal views per video (default 3)")
    parser.add_argument("--crops", type=int, default=1, choices=(1, 3), help="spatial crops per view (default 1)")
    parser.add_argument("--top-k", type=int, default=5, metavar="K", help="classes shown per video (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--frames", type=int, metavar="T", help="frames per clip (default: the weights', else 16)")
    parser.add_argument("--sampling-rate", type=int, metavar="S", help="frame spacing at 30 fps (Kinetics sampling; default 5)")
    parser.add_argument("--crop-size", type=int, metavar="C", help="crop side in pixels (default 224)")
    parser.add_argument("--sampling", choices=SAMPLINGS,
                        help="kinetics: clips of T frames S apart; segments: one frame per T-th of the video "
                             "(default: segments for Something-Something weights)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="B", help="views per forward pass (default 8)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="decoding threads per video (default 1)")
    return parser


def _format_text(result: dict[str, Any]) -> str:
    if not result["ok"]:
        return f"{result['video']}: error: {result['error']}"
    lines = [f"{result['video']}: {result['views']} views ({result['temporal_views']} x {result['crops']} crops) "
             f"of {result['frames']}x{result['crop_size']}², source {result['width']}x{result['height']}, "
             f"{result['source_frames']} frames at {result['fps']:.2f} fps, {result['seconds']:.2f} s"]
    for rank, item in enumerate(result["top_k"], 1):
        lines.append(f"  {rank}. {item['probability']:.4f}  {item['name']} ({item['class']})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    for flag in ("views", "top_k", "batch_size", "threads"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.checkpoint is None and args.pretrained is None:
        raise UsageError("give the weights: --checkpoint FILE or --pretrained TAG (with --model NAME)")
    task = load_task_model(args.model, args.checkpoint, args.pretrained)
    names = resolve_class_names(task, args.labels)
    spec = view_spec(args, task)
    device = parse_device(args.device)
    from vov3d.accel import prepare_for_inference

    model = prepare_for_inference(task.model.to(device))
    top_k = min(args.top_k, task.num_classes)
    results = []
    for video in args.videos:
        start = time.perf_counter()
        try:
            views = read_views(video, spec, threads=args.threads)
            probs = predict_views(model, views.model_input(spec), args.batch_size, device)
        except (DataError, OSError, ValueError) as err:
            reason = getattr(err, "reason", None) or str(err)
            results.append({"video": str(video), "ok": False, "error": reason})
            if not args.json:
                print(f"vov3d predict: error: {video}: {reason}", file=sys.stderr)
            continue
        values, classes = probs.topk(top_k)
        result = {
            "video": str(video), "ok": True, "views": spec.views_per_video, "temporal_views": spec.num_views,
            "crops": spec.num_crops, "frames": spec.num_frames, "crop_size": spec.crop_size,
            "fps": views.fps, "source_frames": views.frame_count, "width": views.width, "height": views.height,
            "seconds": time.perf_counter() - start,
            "top_k": [{"class": int(c), "name": names[int(c)] if names else str(int(c)), "probability": float(p)}
                      for p, c in zip(values, classes)],
        }
        results.append(result)
        if not args.json:
            print(_format_text(result))
    failed = sum(not r["ok"] for r in results)
    if args.json:
        print(json.dumps({"model": task.name, "weights": task.source, "sampling": spec.sampling,
                          "views_per_video": spec.views_per_video, "failed": failed, "results": results}, indent=1))
    elif failed:
        print(f"vov3d predict: {failed} of {len(results)} videos failed", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """`vov3d predict`: see ``build_parser()``. Returns the exit status (0, 1: some video failed or an error, 2: usage)."""
    return run_main("vov3d predict", build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
