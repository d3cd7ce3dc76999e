"""`vov3d explain VIDEO`: Grad-CAM of a class over a clip, as an animated heat-map overlay and a PNG strip.

Issue 17, item 6 (the original offers Grad-CAM only inside TensorBoard). Grad-CAM (Selvaraju et al.,
2017) on the last stage's output ``s5`` (N, C, T, H/32, W/32): the gradient of the class's logit with
respect to ``s5``, averaged over time and space, weighs each channel; the weighted sum of the channels,
clipped at zero, is the map. It is upsampled (trilinear) to the clip's frames and pixels and scaled to
[0, 1]. VoV3D and X3D have no temporal stride, so the map has one value per frame before upsampling
in space. The clip is the one ``vov3d predict --views 1 --crops 1`` takes (spec §8.2/§8.4).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vov3d.engine.predict import (
    UsageError, add_model_arguments, load_task_model, resolve_class_names, run_main, view_spec,
)
from vov3d.engine.video_clips import SAMPLINGS, read_views
from vov3d.utils.atomic import atomic_output_path

OUTPUT_SUFFIXES = (".gif", ".mp4")


@dataclass
class GradCam:
    """A Grad-CAM map: ``cam`` (T, H, W) in [0, 1] over the input clip, the explained class, the probabilities."""

    cam: torch.Tensor
    class_index: int
    probabilities: torch.Tensor


def grad_cam(model: nn.Module, clip: torch.Tensor, class_index: int | None = None) -> GradCam:
    """Grad-CAM of ``class_index`` (default: the predicted class) on ``s5`` for one normalised clip (1, 3, T, H, W).

    ``model`` is a VoV3D/X3D ``VideoClassifier`` (``forward_features`` gives ``s5``); it is run in eval mode.
    """
    if clip.dim() != 5 or clip.shape[0] != 1:
        raise ValueError(f"expected one clip (1, 3, T, H, W), got shape {tuple(clip.shape)}")
    was_training = model.training
    model.eval()
    try:
        if hasattr(model, "check_input"):
            model.check_input(clip)
        with torch.enable_grad():
            x = clip.detach().requires_grad_(True)  # a graph even when the parameters are frozen
            features = model.forward_features(x)
            logits = model.head(features)
            if class_index is None:
                class_index = int(logits[0].argmax())
            if not 0 <= class_index < logits.shape[1]:
                raise ValueError(f"class {class_index} out of range: the model has {logits.shape[1]} classes")
            (grads,) = torch.autograd.grad(logits[0, class_index], features)
    finally:
        model.train(was_training)
    weights = grads.mean(dim=(2, 3, 4), keepdim=True)
    cam = F.relu((weights * features.detach()).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=tuple(clip.shape[2:]), mode="trilinear", align_corners=False)[0, 0]
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else torch.zeros_like(cam)
    return GradCam(cam, class_index, logits.detach()[0].float().softmax(dim=0))


# ------------------------------------------------------------------------------------- rendering


def jet(values: np.ndarray) -> np.ndarray:
    """The jet colour map (blue, cyan, yellow, red) of values in [0, 1]: uint8 (..., 3)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    rgb = np.clip(1.5 - np.abs(4.0 * v - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)
    return (rgb * 255).astype(np.uint8)


def overlay_frames(frames: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Frames uint8 (T, H, W, 3) blended with the jet colours of ``cam`` (T, H, W); the blend grows with the map."""
    weight = alpha * np.sqrt(np.clip(cam, 0, 1))[..., None]
    out = frames.astype(np.float32) * (1 - weight) + jet(cam).astype(np.float32) * weight
    return out.round().clip(0, 255).astype(np.uint8)


def _enlarge(frames: np.ndarray, min_side: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor so that the short side is at least ``min_side``."""
    factor = max(1, math.ceil(min_side / min(frames.shape[1:3])))
    return frames.repeat(factor, axis=1).repeat(factor, axis=2) if factor > 1 else frames


def _caption(images: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    out = []
    for image in images:
        pil = Image.fromarray(image)
        draw = ImageDraw.Draw(pil)
        draw.rectangle((0, 0, pil.width, 12), fill=(0, 0, 0))
        draw.text((2, 0), text, fill=(255, 255, 255))
        out.append(np.asarray(pil))
    return np.stack(out)


def write_animation(path: Path, images: np.ndarray, fps: float = 8.0) -> None:
    """An animated GIF (Pillow) or MP4 (PyAV, H.264 or MPEG-4 Part 2) of uint8 (T, H, W, 3) images, written atomically."""
    with atomic_output_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            from PIL import Image

            pil = [Image.fromarray(im) for im in images]
            pil[0].save(tmp, save_all=True, append_images=pil[1:], duration=int(1000 / fps), loop=0)
        else:
            import av

            h, w = (images.shape[1] // 2) * 2, (images.shape[2] // 2) * 2  # 4:2:0 needs even sides
            with av.open(str(tmp), "w", format="mp4") as container:
                try:
                    stream = container.add_stream("libx264", rate=round(fps))
                except (av.error.FFmpegError, ValueError):  # a PyAV without H.264
                    stream = container.add_stream("mpeg4", rate=round(fps))
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                for image in images:
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
                    for packet in stream.encode(frame):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)


def write_strip(path: Path, frames: np.ndarray, overlay: np.ndarray, max_frames: int = 8) -> None:
    """A PNG with the frames on top and their overlays below, at most ``max_frames`` evenly chosen."""
    from PIL import Image

    pick = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    top, bottom = np.concatenate(list(frames[pick]), axis=1), np.concatenate(list(overlay[pick]), axis=1)
    with atomic_output_path(path) as tmp:
        Image.fromarray(np.concatenate([top, bottom], axis=0)).save(tmp)


# ---------------------------------------------------------------------------------- command line


def strip_path(out: Path) -> Path:
    return out.with_name(out.stem + "_strip.png")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vov3d explain",
        description="Grad-CAM of the predicted (or a chosen) class over a clip: an animated heat-map overlay "
                    "(GIF or MP4) and a PNG strip of frames.")
    parser.add_argument("video", metavar="VIDEO")
    add_model_arguments(parser, model_required=False)
    parser.add_argument("--out", required=True, metavar="FILE.gif|FILE.mp4", help="the animation; the strip goes "
                        "beside it as FILE_strip.png")
    parser.add_argument("--class", dest="class_", metavar="ID|NAME", help="class to explain (default: the predicted one)")
    parser.add_argument("--labels", metavar="NAME|FILE", help="class names: kinetics400, ssv2 or a file")
    parser.add_argument("--frames", type=int, metavar="T", help="frames of the clip (default: the weights', else 16)")
    parser.add_argument("--sampling-rate", type=int, metavar="S", help="frame spacing at 30 fps (default 5)")
    parser.add_argument("--crop-size", type=int, metavar="C", help="crop side in pixels (default 224)")
    parser.add_argument("--sampling", choices=SAMPLINGS, help="as in `vov3d predict`")
    parser.add_argument("--fps", type=float, default=8.0, help="frames per second of the animation (default 8)")
    return parser


def _class_index(text: str | None, names: list[str] | None, num_classes: int) -> int | None:
    if text is None:
        return None
    if text.lstrip("-").isdigit():
        index = int(text)
    elif names and text in names:
        index = names.index(text)
    else:
        raise UsageError(f"--class {text!r}: not a class number" + (" nor a class name" if names else ""))
    if not 0 <= index < num_classes:
        raise UsageError(f"--class {index}: the model has {num_classes} classes (0..{num_classes - 1})")
    return index


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"--out {out}: expected a .gif or .mp4 file")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--out {out}: folder {out.parent} does not exist")
    if args.checkpoint is None and args.pretrained is None:
        raise UsageError("give the weights: --checkpoint FILE or --pretrained TAG (with --model NAME)")
    task = load_task_model(args.model, args.checkpoint, args.pretrained)
    names = resolve_class_names(task, args.labels)
    chosen = _class_index(args.class_, names, task.num_classes)
    args.views, args.crops = 1, 1
    spec = view_spec(args, task)
    views = read_views(args.video, spec)
    result = grad_cam(task.model, views.model_input(spec), chosen)

    frames = (views.frames[0].permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)  # (T, S, S, 3) RGB
    cam = result.cam.numpy()
    overlay = overlay_frames(frames, cam)
    frames, overlay = _enlarge(frames, 160), _enlarge(overlay, 160)
    name = names[result.class_index] if names else str(result.class_index)
    probability = float(result.probabilities[result.class_index])
    write_animation(out, _caption(overlay, f"{name} {probability:.2f}"), args.fps)
    strip = strip_path(out)
    write_strip(strip, frames, overlay)
    per_frame = cam.reshape(len(cam), -1).mean(axis=1)
    print(f"{args.video}: Grad-CAM of class {result.class_index} ({name}, probability {probability:.3f}"
          f"{', predicted' if chosen is None else ''}) on s5 of {task.name}, clip {spec.num_frames}x{spec.crop_size}²")
    print(f"strongest in frame {int(per_frame.argmax())} of {len(cam)}; wrote {out} and {strip}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`vov3d explain`: see ``build_parser()``."""
    return run_main("vov3d explain", build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
