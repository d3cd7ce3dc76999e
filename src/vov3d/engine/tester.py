"""Multi-view testing: ``test(cfg) -> dict`` (spec §9.5).

Every test clip (NUM_ENSEMBLE_VIEWS × NUM_SPATIAL_CROPS views a video) goes through the model in
eval mode; the ensemble of a video is the sum of its views' softmax probabilities (ENSEMBLE_METHOD
"sum", or "max"). Our head with global pooling gives logits in eval mode, the original head's
fixed pool gives probabilities (spec §4): softmax is applied exactly once either way.

Differences from the original (spec §11.9, §11.10), on purpose: the checkpoint is loaded strictly and
a run without one is an error (the original tests random weights with a warning); every video must
have all its views: one with a missing or undecodable view is listed in the log and the summary (the
original logs one warning and averages what it has); predictions are written as JSON lines with
the top-5 classes and scores (the original pickles the labels twice).
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vov3d.engine import checkpointer
from vov3d.engine.progress import Progress, format_seconds
from vov3d.engine.trainer import build_split_loader, is_main_process, resolve_device, world_info

logger = logging.getLogger(__name__)


def _class_names(cfg: Any, dataset: Any, num_classes: int) -> list[str]:
    """DATA.CLASS_NAMES (a file, one name a line), else the dataset's names, else the class ids."""
    path = str(cfg.DATA.get("CLASS_NAMES", "") or "")
    if path:
        names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(names) != num_classes:
            raise ValueError(f"DATA.CLASS_NAMES {path}: {len(names)} names, but MODEL.NUM_CLASSES is {num_classes}")
        return names
    names = getattr(dataset, "class_names", None)
    if names and len(names) == num_classes:
        return list(names)
    return [str(i) for i in range(num_classes)]


def _prepare_model(cfg: Any, model: nn.Module, device: torch.device) -> nn.Module:
    """The model to run: ``prepare_for_inference`` on a CPU (TRAIN.BACKEND not eager), else the plain one."""
    model.eval()
    backend = str(cfg.TRAIN.get("BACKEND", "auto"))
    if device.type == "cpu" and backend != "eager":
        from vov3d.accel import prepare_for_inference

        try:
            return prepare_for_inference(model, backend=backend)
        except (RuntimeError, ValueError, NotImplementedError) as err:
            logger.warning("prepare_for_inference failed (%s); testing with the plain model", err)
    return model


def _shared_test_checkpoint(cfg: Any, output_dir: Path) -> Path:
    """The checkpoint to test; in a job of several processes rank 0 chooses it and every rank takes
    its choice (all test the same weights; an error there is raised on every rank)."""
    from vov3d.engine import distributed as D

    def choose() -> Path:
        return checkpointer.resolve_test_checkpoint(
            test_path=str(cfg.TEST.CHECKPOINT_FILE_PATH or ""), output_dir=output_dir,
            train_path=str(cfg.TRAIN.CHECKPOINT_FILE_PATH or ""),
        )

    if world_info()[0] == 1:
        return choose()
    choice: tuple[str, str] = ("", "")
    if is_main_process():
        try:
            choice = (str(choose()), "")
        except checkpointer.CheckpointError as err:
            choice = ("", str(err))
    path, error = D.all_gather_object(choice)[0]
    if error:
        raise checkpointer.CheckpointError(error)
    return Path(path)


def _summary_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 3 + max(len(v) for _, v in rows))
    return "\n".join([line] + [f"{k.ljust(width)} : {v}" for k, v in rows] + [line])


@torch.no_grad()
def test(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Test as configured (spec §9.5): returns top-1/top-5 accuracy (%), view counts, files written."""
    from vov3d.config import builders
    from vov3d.engine.ensemble import ViewEnsemble
    from vov3d.engine.json_stats import json_stats_line, test_final_stats
    from vov3d.engine.plots import confusion_matrix, plot_confusion_matrix
    from vov3d.engine.predictions import write_predictions

    from vov3d.config import check_world
    from vov3d.engine import distributed as D

    world, _ = world_info()
    check_world(cfg, world, D.get_local_world_size())
    device = resolve_device(int(cfg.NUM_GPUS))
    output_dir = Path(cfg.OUTPUT_DIR)
    path = _shared_test_checkpoint(cfg, output_dir)
    from vov3d.checkpoint import read_checkpoint

    model = builders.build_model(cfg)
    checkpointer.load_model_weights(model, path, read_checkpoint(path), builders.model_name(cfg), strict=True)
    logger.info("testing the weights of %s", path)
    outputs_probabilities = getattr(getattr(model, "head", None), "pool", "global") == "original"
    model.to(device)
    runner = _prepare_model(cfg, model, device)

    loader = build_split_loader(cfg, "test", world, shuffle=False)
    dataset = loader.dataset
    views = int(getattr(dataset, "views_per_video", int(cfg.TEST.NUM_ENSEMBLE_VIEWS) * int(cfg.TEST.NUM_SPATIAL_CROPS)))
    num_videos = len(dataset) // views
    num_classes = int(cfg.MODEL.NUM_CLASSES)
    ensemble = ViewEnsemble(num_videos, num_classes, views, method=str(cfg.DATA.ENSEMBLE_METHOD))
    amp = contextlib.nullcontext()
    if device.type == "cuda" and str(cfg.TRAIN.get("MIXED_PRECISION", "auto")) != "off":
        amp = torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    t0 = time.perf_counter()
    with Progress("test", len(loader), log_period=int(cfg.LOG_PERIOD), enabled=progress and is_main_process()) as bar:
        for it, (clips, labels, index, meta) in enumerate(loader):
            errors = list(meta.get("error", [""] * len(labels)))
            with amp:
                out = runner(clips.to(device, non_blocking=True))
            scores = out.float() if outputs_probabilities else out.float().softmax(dim=1)
            ensemble.add(scores.cpu(), index, errors)
            bar.update(len(labels))
            if (it + 1) % max(1, int(cfg.LOG_PERIOD)) == 0 and is_main_process():
                logger.info("%s", json_stats_line({"split": "test_iter", "cur_iter": f"{it + 1}",
                                                  "eta": format_seconds(bar.eta()),
                                                  "time_diff": bar.elapsed}))
    if world > 1:  # every rank's views into one ensemble; a view the sampler padded in twice counts once
        for state in D.all_gather_object(ensemble.merge_state()):
            ensemble.load_state(state)
    labels = torch.tensor(dataset.labels[:num_videos], dtype=torch.long)
    incomplete = ensemble.incomplete()
    for video, info in sorted(incomplete.items())[:20]:
        logger.warning("test video %d (%s): incomplete views: %s", video, dataset.videos[video].path, info)
    if incomplete:
        logger.warning("%d of %d test videos are missing views or have undecodable ones; their scores use "
                       "only the views that were read", len(incomplete), num_videos)
    k5 = min(5, num_classes)
    accuracy = ensemble.accuracy(labels, ks=(1, k5))
    top1, top5 = float(accuracy["top1_acc"]), float(accuracy[f"top{k5}_acc"])
    result: dict[str, Any] = {
        "top1_acc": top1, "top5_acc": top5, "videos": num_videos, "views_per_video": views,
        "incomplete_videos": sorted(int(v) for v in incomplete), "checkpoint": str(path),
        "seconds": time.perf_counter() - t0,
    }
    if is_main_process():
        logger.info("%s", json_stats_line(test_final_stats(top1, top5)))
        scores = ensemble.scores()
        names = _class_names(cfg, dataset, num_classes)
        save_path = Path(cfg.TEST.SAVE_RESULTS_PATH) if cfg.TEST.SAVE_RESULTS_PATH else output_dir / "predictions.jsonl"
        if not save_path.is_absolute() and cfg.TEST.SAVE_RESULTS_PATH:
            save_path = output_dir / save_path  # the original joins it to OUTPUT_DIR
        if save_path.suffix in (".pkl", ".pickle"):
            logger.warning("TEST.SAVE_RESULTS_PATH %s: written as JSON lines (one video a line), not as the "
                           "original's pickle of [labels, labels] (spec §11.10)", save_path)
        write_predictions(save_path, [v.path for v in dataset.videos[:num_videos]], labels.tolist(), scores, names)
        matrix = confusion_matrix(scores.argmax(dim=1), labels, num_classes)
        matrix_path = output_dir / "confusion_matrix.png"
        plot_confusion_matrix(matrix, names, matrix_path)
        result.update(predictions=str(save_path), confusion_matrix=str(matrix_path))
        print(_summary_table([
            ("checkpoint", str(path)),
            ("videos", str(num_videos)),
            ("views per video", f"{cfg.TEST.NUM_ENSEMBLE_VIEWS} x {cfg.TEST.NUM_SPATIAL_CROPS}"),
            ("incomplete videos", str(len(incomplete))),
            ("top-1 accuracy", f"{top1:.2f} %"),
            ("top-5 accuracy", f"{top5:.2f} %"),
            ("predictions", str(save_path)),
            ("confusion matrix", str(matrix_path)),
        ]), flush=True)
    return result
