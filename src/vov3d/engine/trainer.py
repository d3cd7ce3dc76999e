"""Training: ``train(cfg) -> dict`` (spec §9.3), the original's epoch loop with our additions.

Order as in the original: seeds, model, model info, optimizer, checkpoint, loaders; then per epoch:
set_epoch, train (LR set every iteration from the fractional epoch), precise BN when a checkpoint or
an evaluation is due, checkpoint, evaluation. Additions (off by default unless said): mid-epoch
checkpoints and resume (TRAIN.CHECKPOINT_ITER_PERIOD), a NaN/Inf loss stops the run with the epoch
and iteration and keeps the last good checkpoint, label smoothing, mixup/cutmix, EMA, gradient
accumulation, the fast CPU step (``vov3d.accel.prepare_for_training``, TRAIN.BACKEND), mixed
precision/channels_last_3d/torch.compile on a GPU, corrupt training videos skipped and counted,
progress bars, curves PNG and TensorBoard.

Distributed (issue 18, docs/distributed.md): ``train`` runs in every process of a job that
``engine.distributed.launch`` started (run_net.py). Each rank trains a DDP-wrapped model on its
share of every global batch (DistributedSampler, reshuffled each epoch; TRAIN.BATCH_SIZE is the
total); BN.NORM_TYPE sync_batchnorm converts the BatchNorms; rank 0 chooses the checkpoint every
rank resumes from and alone writes checkpoints, logs, TensorBoard, plots and the config dump;
precise BN is averaged over the ranks; a SIGTERM seen by any rank stops all of them together.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from vov3d.engine import checkpointer
from vov3d.engine.progress import Progress

logger = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN/Inf loss, weights that became non-finite)."""


class TrainingStopped(RuntimeError):
    """SIGTERM (a preemption, a scheduler's time limit) stopped training after a checkpoint of the position."""


class SetupError(ValueError):
    """The run cannot start as configured (e.g. more GPUs asked for than present); names the key."""


# --------------------------------------------------------------------------------------- processes
def world_info() -> tuple[int, int]:
    """(world size, rank) of this process (``engine.distributed``; (1, 0) alone)."""
    from vov3d.engine.distributed import process_group

    return process_group.get_world_size(), process_group.get_rank()


def is_main_process() -> bool:
    """True on rank 0: the one process that writes files (checkpoints, stats, plots)."""
    return world_info()[1] == 0


def all_reduce_mean(values: Sequence[float], device: torch.device) -> list[float]:
    """Average ``values`` over the ranks (the original all-reduces loss and errors); a no-op alone."""
    if world_info()[0] == 1:
        return [float(v) for v in values]
    from vov3d.engine.distributed import process_group

    return process_group.all_reduce_mean(torch.tensor([float(v) for v in values], dtype=torch.float64,
                                                      device=device)).tolist()


def resolve_device(num_gpus: int) -> torch.device:
    """This process's device (spec §10, docs/distributed.md).

    NUM_GPUS 0: the CPU. NUM_GPUS N on a machine with CUDA: the GPU of this process's local rank
    (more than the GPUs present is an error naming NUM_GPUS). NUM_GPUS N on a machine without CUDA:
    the CPU (run_net.py starts N CPU processes there, with a warning; ``processes_per_machine``).
    """
    if num_gpus < 0:
        raise SetupError(f"NUM_GPUS must be >= 0, got {num_gpus}")
    if num_gpus == 0:
        return torch.device("cpu")
    from vov3d.engine.distributed import process_group, processes_per_machine

    try:
        _, use_cuda = processes_per_machine(num_gpus)
    except ValueError as err:
        raise SetupError(str(err)) from None
    if not use_cuda:
        return torch.device("cpu")
    local, present = process_group.get_local_rank(), torch.cuda.device_count()
    if local >= present:
        raise SetupError(f"local rank {local} has no GPU: {present} CUDA GPU(s) are present on this machine; start "
                         f"at most {present} processes per machine (NUM_GPUS, torchrun --nproc-per-node)")
    return torch.device("cuda", local)


def seed_everything(seed: int) -> None:
    """Seeds as the original (NumPy, torch) plus Python's ``random`` (spec §9.3)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------- loaders
class ResumableSampler(Sampler):
    """Wraps the loader's sampler so that one epoch can start after its first ``skip`` samples.

    The data loader's order depends only on (seed, epoch) (``vov3d.data.loader``): skipping the
    sampler's first k·batch indices resumes an epoch with the same sample order, without decoding
    the skipped clips. ``skip`` applies to the next epoch iterated only.
    """

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Any]:
        skip, self.skip = self.skip, 0
        for position, item in enumerate(self.inner):
            if position >= skip:
                yield item

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)  # type: ignore[arg-type]


def make_resumable(loader: DataLoader) -> DataLoader:
    """The same loader (dataset, batches, workers, seed) with a ``ResumableSampler`` around its sampler."""
    kwargs: dict[str, Any] = dict(
        batch_size=loader.batch_size, sampler=ResumableSampler(loader.sampler), num_workers=loader.num_workers,
        pin_memory=loader.pin_memory, drop_last=loader.drop_last, generator=loader.generator,
        collate_fn=loader.collate_fn, worker_init_fn=loader.worker_init_fn, timeout=loader.timeout,
    )
    if loader.num_workers > 0:
        kwargs.update(persistent_workers=loader.persistent_workers, prefetch_factor=loader.prefetch_factor,
                      multiprocessing_context=loader.multiprocessing_context)
    return DataLoader(loader.dataset, **kwargs)


def build_split_loader(cfg: Any, split: str, world: int, *, shuffle: bool) -> DataLoader:
    """A loader of ``split`` (train: shuffle, drop_last; val/test: neither, spec §8.1)."""
    from vov3d.config import builders
    from vov3d.data import build_loader

    dataset = builders.build_dataset(cfg, split)
    batch = builders.per_process_batch_size(cfg, split, world)
    if split == "train" and len(dataset) < batch * world:
        from vov3d.data import EmptySplitError

        raise EmptySplitError(
            f"the train split of {cfg.DATA.PATH_TO_DATA_DIR} has {len(dataset)} clips, fewer than one batch "
            f"(TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE}): no training iteration would run"
        )
    return build_loader(
        dataset, batch, shuffle=shuffle, drop_last=(split == "train"), num_workers=int(cfg.DATA_LOADER.NUM_WORKERS),
        seed=int(cfg.RNG_SEED), distributed=world > 1,
        pin_memory=bool(cfg.DATA_LOADER.PIN_MEMORY) and torch.cuda.is_available() and cfg.NUM_GPUS > 0,
        persistent_workers=int(cfg.DATA_LOADER.NUM_WORKERS) > 0 and split == "train",
    )


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    from vov3d.data import set_epoch

    set_epoch(loader, epoch)


# --------------------------------------------------------------------------------------- the step
def build_train_model(model: nn.Module, device: torch.device, backend: str, compile_model: bool,
                      channels_last: bool) -> nn.Module:
    """The module the training step runs (its parameters are ``model``'s).

    CPU: ``vov3d.accel.prepare_for_training`` (TRAIN.BACKEND auto|kernels|channels_last), ``torch.compile`` of the
    plain model (compiled) or the plain model (eager). GPU: the plain model, channels_last_3d if asked
    (TRAIN.CHANNELS_LAST), ``torch.compile`` if TRAIN.COMPILE.
    """
    if device.type == "cpu":
        if backend == "eager":
            return model
        if backend == "compiled":
            return torch.compile(model)
        from vov3d.accel import prepare_for_training

        return prepare_for_training(model, backend=backend)  # auto | kernels | channels_last
    if channels_last:
        model.to(memory_format=torch.channels_last_3d)
    return torch.compile(model) if compile_model else model


def autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision of the step (TRAIN.MIXED_PRECISION): GPU only; auto = bf16 where supported, else fp16."""
    if device.type != "cuda" or mode == "off":
        if device.type != "cuda" and mode in ("bf16", "fp16"):
            logger.warning("TRAIN.MIXED_PRECISION %s applies to GPUs only; the CPU step runs in float32", mode)
        return None
    if mode == "bf16" or (mode == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


@dataclass
class TrainStep:
    """One training iteration: forward, loss, NaN check, backward and (every GRAD_ACCUM_STEPS) the step."""

    model: nn.Module  # the pure model (checkpoints, precise BN, evaluation)
    train_model: nn.Module  # what runs the step (prepared / compiled / the same)
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    device: torch.device
    accum_steps: int = 1
    amp_dtype: torch.dtype | None = None
    scaler: Any = None
    channels_last: bool = False
    mixup: Any = None
    ema: Any = None

    def to_device(self, clips: torch.Tensor) -> torch.Tensor:
        clips = clips.to(self.device, non_blocking=True)
        if self.channels_last and self.device.type == "cuda":
            clips = clips.contiguous(memory_format=torch.channels_last_3d)
        return clips

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor, micro_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Run iteration ``micro_step`` (0-based, counted in the epoch); returns (loss, logits), detached.

        Raises ``FloatingPointError`` on a non-finite loss, before anything is updated.
        """
        clips, labels = self.to_device(clips), labels.to(self.device, non_blocking=True)
        target: torch.Tensor = labels
        if self.mixup is not None:
            clips, target = self.mixup(clips, labels)
        amp = (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None
               else contextlib.nullcontext())
        with amp:
            logits = self.train_model(clips)
            loss = self.loss_fn(logits.float(), target)
        if not torch.isfinite(loss.detach()).item():
            raise FloatingPointError(float(loss.detach()))
        if micro_step % self.accum_steps == 0:
            self.optimizer.zero_grad(set_to_none=True)
        scaled = loss / self.accum_steps if self.accum_steps > 1 else loss
        if self.scaler is not None:
            self.scaler.scale(scaled).backward()
        else:
            scaled.backward()
        if (micro_step + 1) % self.accum_steps == 0:
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.model)
        return loss.detach(), logits.detach()


# --------------------------------------------------------------------------------------- stats
def _memory_stats(device: torch.device) -> dict[str, Any]:
    gpu_mem = torch.cuda.max_memory_allocated(device) / 1024**3 if device.type == "cuda" else 0.0
    try:
        import resource

        ram = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB
    except (ImportError, OSError):
        ram = 0.0
    return {"gpu_mem": round(gpu_mem, 3), "RAM": round(ram, 3)}  # GiB


def _log_json(stats: dict[str, Any]) -> None:
    from vov3d.engine.json_stats import json_stats_line

    if is_main_process():
        logger.info("%s", json_stats_line(stats))


def _topk_errors(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[float, float]:
    from vov3d.engine.metrics import topk_errors

    k5 = min(5, num_classes)
    top1, top5 = topk_errors(logits.float(), labels, ks=(1, k5))
    return float(top1), float(top5)


@dataclass
class EpochMeter:
    """Sums over one training epoch (sample-weighted means for ``train_epoch``), checkpointed mid-epoch."""

    samples: int = 0
    loss_sum: float = 0.0
    top1_sum: float = 0.0
    top5_sum: float = 0.0
    failures: int = 0
    seconds: float = 0.0
    last_lr: float = 0.0  # the LR of the last iteration
    dt_data: float = 0.0  # the last iteration's waiting for data and compute times
    dt_net: float = 0.0
    window: deque = field(default_factory=lambda: deque(maxlen=10))  # for the medians of train_iter

    def add(self, n: int, loss: float, top1: float, top5: float) -> None:
        self.samples += n
        self.loss_sum += loss * n
        self.top1_sum += top1 * n
        self.top5_sum += top5 * n
        self.window.append((loss, top1, top5))

    def medians(self) -> tuple[float, float, float]:
        cols = list(zip(*self.window)) or [(0.0,), (0.0,), (0.0,)]
        return tuple(statistics.median(c) for c in cols)  # type: ignore[return-value]

    def means(self) -> dict[str, float]:
        n = max(1, self.samples)
        return {"loss": self.loss_sum / n, "top1_err": self.top1_sum / n, "top5_err": self.top5_sum / n}

    def state(self) -> dict[str, Any]:
        return {"samples": self.samples, "loss_sum": self.loss_sum, "top1_sum": self.top1_sum,
                "top5_sum": self.top5_sum, "failures": self.failures, "seconds": self.seconds}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "EpochMeter":
        meter = cls()
        for key, value in (state or {}).items():
            setattr(meter, key, value)
        return meter


# --------------------------------------------------------------------------------------- the run
@dataclass
class Run:
    """Everything one training run holds (built by ``setup``; ``train`` drives it)."""

    cfg: Any
    device: torch.device
    model: nn.Module
    step: TrainStep
    schedule: Callable[[float], float]
    train_loader: DataLoader
    val_loader: DataLoader | None
    start: checkpointer.TrainStart
    num_classes: int
    output_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    iteration_history: list[dict[str, Any]] = field(default_factory=list)  # every LOG_PERIOD iterations
    best: dict[str, float] = field(default_factory=dict)
    last_checkpoint: str = ""
    writer: Any = None
    mixup_generator: torch.Generator | None = None
    stop_requested: bool = False  # set by SIGTERM: checkpoint the position and stop at the next step

    @property
    def max_epoch(self) -> int:
        return int(self.cfg.SOLVER.MAX_EPOCH)

    @property
    def iters_per_epoch(self) -> int:
        return len(self.train_loader.sampler.inner) // self.train_loader.batch_size  # type: ignore[attr-defined]


def _log_model_info(cfg: Any, model: nn.Module) -> None:
    """Params and GFLOPs of one training clip (LOG_MODEL_INFO, spec §9.3 step 2; §6's counting)."""
    from vov3d.config import builders
    from vov3d.models.complexity import count_gmacs, count_parameters

    params = count_parameters(model)
    frames, size = int(cfg.DATA.NUM_FRAMES), int(cfg.DATA.TRAIN_CROP_SIZE)
    try:
        gflops = f"{count_gmacs(model, frames, size):.2f}"
    except Exception as err:  # complexity is informative only
        gflops = f"n/a ({type(err).__name__})"
    logger.info("model %s: %.2fM params, %s GFLOPs (multiply-adds) per %dx%d² clip",
                builders.model_name(cfg), params / 1e6, gflops, frames, size)


def setup(cfg: Any) -> Run:
    """Build the run (spec §9.3 setup order): seeds, model, info, optimizer, checkpoint, loaders."""
    from vov3d.config import builders
    from vov3d.engine.losses import build_loss
    from vov3d.engine.lr_schedule import LRSchedule
    from vov3d.engine.optimizer import build_optimizer

    from vov3d.config import check_world
    from vov3d.engine import distributed as D

    world, rank = world_info()
    check_world(cfg, world, D.get_local_world_size())  # batches and sync-BN groups fit the processes (§11.15)
    device = resolve_device(int(cfg.NUM_GPUS))
    seed_everything(int(cfg.RNG_SEED) + rank)
    output_dir = Path(cfg.OUTPUT_DIR)
    model = builders.build_model(cfg)
    if cfg.LOG_MODEL_INFO and is_main_process():
        _log_model_info(cfg, model)
    model.to(device)
    sync_bn = str(cfg.BN.NORM_TYPE) == "sync_batchnorm"
    if sync_bn:
        model = D.convert_sync_batchnorm(model, int(cfg.BN.NUM_SYNC_DEVICES), bool(cfg.BN.get("GLOBAL_SYNC", False)))
    optimizer = build_optimizer(model, **builders.optimizer_kwargs(cfg))
    start = checkpointer.resolve_train_start(
        model, optimizer, output_dir=output_dir, auto_resume=bool(cfg.TRAIN.AUTO_RESUME),
        finetune_path=str(cfg.TRAIN.CHECKPOINT_FILE_PATH or ""), model_name=builders.model_name(cfg),
        load_what_fits=bool(cfg.TRAIN.get("FINETUNE_LOAD_WHAT_FITS", False)),
        clear_name_patterns=tuple(cfg.TRAIN.get("CHECKPOINT_CLEAR_NAME_PATTERN", ()) or ()),
        resume_choice=shared_resume_choice if world > 1 else None,
    )
    train_loader = make_resumable(build_split_loader(cfg, "train", world, shuffle=True))
    val_loader = build_split_loader(cfg, "val", world, shuffle=False) if int(cfg.TRAIN.EVAL_PERIOD) > 0 else None

    total_batch = builders.per_process_batch_size(cfg, "train", world) * world
    schedule = LRSchedule(**builders.schedule_kwargs(cfg, total_batch))
    num_classes = int(cfg.MODEL.NUM_CLASSES)
    amp_dtype = autocast_dtype(str(cfg.TRAIN.get("MIXED_PRECISION", "auto")), device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    if scaler is not None and start.scaler_state:
        scaler.load_state_dict(start.scaler_state)
    channels_last = bool(cfg.TRAIN.get("CHANNELS_LAST", True))
    backend = str(cfg.TRAIN.get("BACKEND", "auto"))
    if sync_bn and device.type == "cpu" and backend in ("auto", "kernels", "channels_last"):
        # the prepared step's batch-norm kernels use this process's batch statistics only
        logger.info("BN.NORM_TYPE sync_batchnorm: the CPU step runs the eager model (TRAIN.BACKEND %s ignored)", backend)
        backend = "eager"
    train_model = build_train_model(model, device, backend, bool(cfg.TRAIN.get("COMPILE", False)), channels_last)
    # after every rank loaded its checkpoint: DDP's construction is a collective (and copies rank 0's weights)
    train_model = D.wrap_ddp(train_model, device)
    mixup, mixup_generator = None, None
    if cfg.get("MIXUP") is not None and cfg.MIXUP.ENABLE:
        from vov3d.engine.mixup import MixupCutmix

        mixup_generator = torch.Generator(device="cpu")
        mixup_generator.manual_seed(int(cfg.RNG_SEED) + rank)
        mixup = MixupCutmix(num_classes, mixup_alpha=cfg.MIXUP.ALPHA, cutmix_alpha=cfg.MIXUP.CUTMIX_ALPHA,
                            prob=cfg.MIXUP.PROB, switch_prob=cfg.MIXUP.SWITCH_PROB,
                            label_smoothing=float(cfg.SOLVER.get("LABEL_SMOOTHING", 0.0)), generator=mixup_generator)
    ema = None
    if cfg.get("EMA") is not None and cfg.EMA.ENABLE:
        from vov3d.engine.ema import ModelEma

        ema = ModelEma(model, cfg.EMA.DECAY)
        if start.ema_state:
            ema.load_state_dict(start.ema_state)
    step = TrainStep(
        model=model, train_model=train_model, optimizer=optimizer,
        loss_fn=build_loss(label_smoothing=float(cfg.SOLVER.get("LABEL_SMOOTHING", 0.0))), device=device,
        accum_steps=max(1, int(cfg.SOLVER.get("GRAD_ACCUM_STEPS", 1))), amp_dtype=amp_dtype, scaler=scaler,
        channels_last=channels_last, mixup=mixup, ema=ema,
    )
    run = Run(cfg=cfg, device=device, model=model, step=step, schedule=schedule, train_loader=train_loader,
              val_loader=val_loader, start=start, num_classes=num_classes, output_dir=output_dir,
              mixup_generator=mixup_generator)
    state = start.train_state
    run.history = list(state.get("history", []))
    run.iteration_history = list(state.get("iteration_history", []))
    run.best = dict(state.get("best", {}))
    if start.resumed:
        run.last_checkpoint = start.source
        by_rank = state.get("torch_rng_by_rank") or []
        if len(by_rank) == world:  # each rank's own generator (dropout, ...)
            torch.set_rng_state(by_rank[rank])
        elif "torch_rng" in state and rank == 0:
            torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        mixup_by_rank = state.get("mixup_rng_by_rank") or []
        if len(mixup_by_rank) == world and mixup_generator is not None:
            mixup_generator.set_state(mixup_by_rank[rank])
        elif "mixup_rng" in state and mixup_generator is not None and rank == 0:
            mixup_generator.set_state(state["mixup_rng"])
    return run


def shared_resume_choice(output_dir: Path) -> Path | None:
    """The checkpoint every rank resumes from: rank 0 chooses (the newest valid file), the others take its
    choice, so that no rank reads a different file (collective; an error on rank 0 is raised on every rank)."""
    from vov3d.engine import distributed as D

    choice: tuple[str, str] = ("", "")
    if is_main_process():
        try:
            found = checkpointer.choose_resume_checkpoint(output_dir)
            choice = (str(found) if found is not None else "", "")
        except checkpointer.CheckpointError as err:
            choice = ("", str(err))
    path, error = D.all_gather_object(choice)[0]
    if error:
        raise checkpointer.CheckpointError(error)
    return Path(path) if path else None


def _train_state(run: Run, epoch: int, iters_done: int, meter: EpochMeter | None,
                 rng_by_rank: list[tuple[torch.Tensor, torch.Tensor | None]] | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "epoch": epoch, "iter": iters_done, "history": run.history, "best": run.best,
        "iteration_history": run.iteration_history,
        "torch_rng": torch.get_rng_state(), "clips_per_iteration": _clips_per_iteration(run),
        "rng_seed": int(run.cfg.RNG_SEED),
    }
    if rng_by_rank is not None and len(rng_by_rank) > 1:  # each rank's (torch, mixup) generator states
        state["torch_rng_by_rank"] = [torch_state for torch_state, _ in rng_by_rank]
        if run.mixup_generator is not None:
            state["mixup_rng_by_rank"] = [mixup_state for _, mixup_state in rng_by_rank]
    if run.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(run.device)
    if run.mixup_generator is not None:
        state["mixup_rng"] = run.mixup_generator.get_state()
    if meter is not None:
        state["meter"] = meter.state()
    return state


def _clips_per_iteration(run: Run) -> int:
    return int(run.train_loader.batch_size) * world_info()[0]


def _mid_epoch_position(run: Run) -> int:
    """Iterations of the start epoch already done; 0 if the batch or seed changed since (the epoch restarts)."""
    state, it = run.start.train_state, run.start.iter
    if not it:
        return 0
    changed = [f"{what} {before} -> {now}" for what, before, now in (
        ("clips per iteration (TRAIN.BATCH_SIZE)", state.get("clips_per_iteration"), _clips_per_iteration(run)),
        ("RNG_SEED", state.get("rng_seed"), int(run.cfg.RNG_SEED)),
    ) if before is not None and before != now]
    if changed:
        logger.warning("%s was written %d iterations into epoch %d, but %s: the sample order differs, so the epoch "
                       "restarts from its beginning", run.start.source, it, run.start.epoch + 1, "; ".join(changed))
        return 0
    return it


def _check_finite_weights(model: nn.Module, epoch: int, iters_done: int) -> None:
    bad = next((name for name, p in model.named_parameters() if not torch.isfinite(p).all()), None)
    if bad is not None:
        raise TrainingError(
            f"the weights became NaN/Inf in epoch {epoch + 1} (by iteration {iters_done}; first bad tensor: {bad}); "
            "no checkpoint of this state was written"
        )


def save(run: Run, path: Path, epoch: int, iters_done: int, meter: EpochMeter | None) -> None:
    """Write a checkpoint of the run's position (rank 0 only); never of non-finite weights."""
    from vov3d.engine import distributed as D

    _check_finite_weights(run.model, epoch, iters_done)
    rng_by_rank = None
    if world_info()[0] > 1:  # collective: every rank's random state goes into rank 0's file
        mixup_state = run.mixup_generator.get_state() if run.mixup_generator is not None else None
        rng_by_rank = D.all_gather_object((torch.get_rng_state(), mixup_state))
    if not is_main_process():
        run.last_checkpoint = str(path)  # rank 0 writes it
        return
    finished = epoch - 1 if iters_done else epoch
    next_epoch, next_iter = (epoch, iters_done) if iters_done else (epoch + 1, 0)
    checkpointer.write_checkpoint(
        path, run.model, run.step.optimizer, finished_epoch=finished, cfg_yaml=run.cfg.dump(),
        train_state=_train_state(run, next_epoch, next_iter, meter, rng_by_rank),
        ema_state=run.step.ema.state_dict() if run.step.ema is not None else None,
        scaler_state=run.step.scaler.state_dict() if run.step.scaler is not None else None,
    )
    run.last_checkpoint = str(path)
    logger.info("wrote checkpoint %s", path)


def _nan_error(run: Run, epoch: int, it: int, value: float) -> TrainingError:
    kept = run.last_checkpoint or "none (no checkpoint was written before)"
    return TrainingError(
        f"the training loss is {value} at epoch {epoch + 1}, iteration {it + 1}: training stopped. "
        f"The last good checkpoint is {kept}; lower SOLVER.BASE_LR (now {run.cfg.SOLVER.BASE_LR}) and resume"
    )


def train_epoch(run: Run, epoch: int, start_iter: int = 0, meter: EpochMeter | None = None,
                progress_enabled: bool = True) -> EpochMeter:
    """One training epoch from iteration ``start_iter`` (spec §9.3 step 2, plus mid-epoch checkpoints)."""
    cfg, step = run.cfg, run.step
    from vov3d.data import count_failures
    from vov3d.engine.optimizer import set_lr

    n_iters = run.iters_per_epoch
    meter = meter or EpochMeter()
    iter_period = int(cfg.TRAIN.get("CHECKPOINT_ITER_PERIOD", 0))
    log_period = max(1, int(cfg.LOG_PERIOD))
    run.train_loader.sampler.skip = start_iter * run.train_loader.batch_size  # type: ignore[attr-defined]
    set_loader_epoch(run.train_loader, epoch)
    step.train_model.train()
    run.model.train()
    lr = run.schedule(epoch + start_iter / n_iters)
    t_start = time.perf_counter()
    t_data_start = t_start
    progress = Progress(f"train epoch {epoch + 1}/{run.max_epoch}", n_iters, log_period=log_period,
                        start=start_iter, enabled=progress_enabled and is_main_process())
    dt_data = dt_net = 0.0
    with progress:
        for it, (clips, labels, _index, meta) in enumerate(run.train_loader, start=start_iter):
            t_net = time.perf_counter()
            dt_data = t_net - t_data_start
            failures = count_failures(meta)
            if failures:
                meter.failures += failures
                errors = [e for e in meta.get("error", []) if e]
                logger.warning("epoch %d iteration %d: %d bad sample(s) skipped and replaced: %s",
                               epoch + 1, it + 1, failures, " | ".join(errors))
            lr = run.schedule(epoch + it / n_iters)
            set_lr(step.optimizer, lr)
            try:
                loss, logits = step(clips, labels, it)
            except FloatingPointError as err:
                raise _nan_error(run, epoch, it, float(err.args[0])) from None
            labels_dev = labels.to(logits.device)
            top1, top5 = _topk_errors(logits, labels_dev, run.num_classes)
            # the stop flag rides with the stats: a SIGTERM seen by any rank stops every rank at this iteration
            loss_v, top1, top5, stop_any = all_reduce_mean([float(loss), top1, top5, float(run.stop_requested)],
                                                           run.device)
            run.stop_requested = stop_any > 0
            if run.device.type == "cuda":
                torch.cuda.synchronize(run.device)
            now = time.perf_counter()
            dt_net = now - t_net
            meter.add(int(labels.shape[0]), loss_v, top1, top5)
            progress.update(int(labels.shape[0]) * world_info()[0], loss=loss_v, lr=lr)
            if (it + 1) % log_period == 0:
                loss_m, top1_m, top5_m = meter.medians()
                _log_json({
                    "_type": "train_iter", "epoch": f"{epoch + 1}/{run.max_epoch}", "iter": f"{it + 1}/{n_iters}",
                    "dt": dt_data + dt_net, "dt_data": dt_data, "dt_net": dt_net,
                    "eta": _eta(progress, run, epoch), "loss": loss_m, "lr": lr,
                    "top1_err": top1_m, "top5_err": top5_m, "gpu_mem": _memory_stats(run.device)["gpu_mem"],
                })
                run.iteration_history.append({"epoch": epoch + (it + 1) / n_iters, "loss": loss_m, "lr": lr,
                                              "train_top1_err": top1_m})
                if run.writer is not None:
                    global_step = epoch * n_iters + it + 1
                    run.writer.add_scalar("Train/loss", loss_m, global_step)
                    run.writer.add_scalar("Train/lr", lr, global_step)
                    run.writer.add_scalar("Train/Top1_err", top1_m, global_step)
                    run.writer.add_scalar("Train/Top5_err", top5_m, global_step)
            done = it + 1
            stop = run.stop_requested and done % step.accum_steps == 0
            if done < n_iters and done % step.accum_steps == 0 and (
                    stop or (iter_period > 0 and done % iter_period == 0)):
                meter.seconds += time.perf_counter() - t_start
                t_start = time.perf_counter()
                save(run, checkpointer.iter_checkpoint_path(run.output_dir, epoch, done), epoch, done, meter)
            if stop and done < n_iters:
                raise TrainingStopped(
                    f"stopped by SIGTERM in epoch {epoch + 1} after iteration {done}; the position is saved in "
                    f"{run.last_checkpoint}: run the same command again to resume (TRAIN.AUTO_RESUME)"
                )
            t_data_start = time.perf_counter()
    meter.seconds += time.perf_counter() - t_start
    meter.last_lr, meter.dt_data, meter.dt_net = lr, dt_data, dt_net
    return meter


def _eta(progress: Progress, run: Run, epoch: int) -> str:
    from vov3d.engine.progress import format_seconds

    left = progress.eta()
    per_epoch = progress.seconds_per_iteration() * run.iters_per_epoch
    return format_seconds(left + per_epoch * (run.max_epoch - epoch - 1))


@torch.no_grad()
def evaluate(run: Run, epoch: int, progress_enabled: bool = True) -> dict[str, float]:
    """One view per video of the val split, eval mode: top-1/top-5 errors (spec §9.3 ``eval_epoch``)."""
    assert run.val_loader is not None
    model = run.step.ema.module if run.step.ema is not None else run.model
    model.eval()
    set_loader_epoch(run.val_loader, epoch)
    correct1 = correct5 = samples = bad = 0
    t0 = time.perf_counter()
    from vov3d.engine.metrics import topk_correct

    k5 = min(5, run.num_classes)
    amp = (torch.autocast(run.device.type, dtype=run.step.amp_dtype) if run.step.amp_dtype is not None
           else contextlib.nullcontext())
    with Progress(f"val epoch {epoch + 1}/{run.max_epoch}", len(run.val_loader), log_period=int(run.cfg.LOG_PERIOD),
                  enabled=progress_enabled and is_main_process()) as progress:
        for clips, labels, _index, meta in run.val_loader:
            keep = torch.tensor([not e for e in meta.get("error", [""] * len(labels))], dtype=torch.bool)
            bad += int((~keep).sum())
            if keep.any():
                with amp:
                    scores = model(run.step.to_device(clips[keep]))
                c1, c5 = topk_correct(scores.float(), labels[keep].to(scores.device), ks=(1, k5))
                correct1 += int(c1)
                correct5 += int(c5)
                samples += int(keep.sum())
            progress.update(len(labels))
    world, _ = world_info()
    if world > 1:
        totals = torch.tensor([correct1, correct5, samples, bad], dtype=torch.float64, device=run.device)
        torch.distributed.all_reduce(totals)
        correct1, correct5, samples, bad = (int(v) for v in totals.tolist())
    if bad:
        logger.warning("evaluation of epoch %d: %d val clip(s) could not be read and were left out", epoch + 1, bad)
    top1 = 100.0 * (1 - correct1 / samples) if samples else float("nan")
    top5 = 100.0 * (1 - correct5 / samples) if samples else float("nan")
    run.best["min_top1_err"] = min(run.best.get("min_top1_err", math.inf), top1)
    run.best["min_top5_err"] = min(run.best.get("min_top5_err", math.inf), top5)
    stats = {"_type": "val_epoch", "epoch": f"{epoch + 1}/{run.max_epoch}", "time_diff": time.perf_counter() - t0,
             "top1_err": top1, "top5_err": top5, **run.best, **_memory_stats(run.device)}
    _log_json(stats)
    if run.writer is not None:
        run.writer.add_scalar("Val/Top1_err", top1, epoch + 1)
        run.writer.add_scalar("Val/Top5_err", top5, epoch + 1)
    return {"top1_err": top1, "top5_err": top5, "bad_clips": bad}


def precise_bn(run: Run, epoch: int) -> int:
    """Recompute the BN statistics on training batches (spec §9.3 step 4; BN.NUM_BATCHES_PRECISE)."""
    from vov3d.engine.precise_bn import update_bn_stats

    num = min(int(run.cfg.BN.NUM_BATCHES_PRECISE), run.iters_per_epoch)
    set_loader_epoch(run.train_loader, epoch)

    def batches() -> Iterator[torch.Tensor]:
        for clips, *_ in run.train_loader:
            yield run.step.to_device(clips)

    run.model.train()
    used = update_bn_stats(run.model, batches(), num)
    from vov3d.engine import distributed as D

    # every rank ends with the clip-weighted average over all ranks' batches (a no-op alone)
    D.average_bn_stats(run.model, num_samples=used * int(run.train_loader.batch_size))
    logger.info("precise BN: statistics recomputed on %d training batches%s", used,
                f" on each of {world_info()[0]} processes" if world_info()[0] > 1 else "")
    return used


def _open_tensorboard(cfg: Any, output_dir: Path) -> Any:
    if not (cfg.get("TENSORBOARD") is not None and cfg.TENSORBOARD.ENABLE and is_main_process()):
        return None
    from torch.utils.tensorboard import SummaryWriter

    name = cfg.TENSORBOARD.LOG_DIR or f"runs-{cfg.TRAIN.DATASET}"
    return SummaryWriter(log_dir=str(output_dir / name))


def train(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Train as configured (spec §9.3); returns a summary (epochs run, last stats, files written).

    Raises ``TrainingError`` on a NaN/Inf loss (the last good checkpoint is kept), ``TrainingStopped``
    after SIGTERM (the position is checkpointed first, so a rerun resumes there), ``SetupError``,
    ``ConfigError``, ``CheckpointError`` or ``DataError`` (subclasses of ValueError/Exception whose
    messages name the key or file) when the run cannot start.
    """
    from vov3d.config import dump_config

    output_dir = Path(cfg.OUTPUT_DIR)
    if is_main_process():
        output_dir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, output_dir / "config.yaml")
    run = setup(cfg)
    run.writer = _open_tensorboard(cfg, output_dir)
    with _stop_on_sigterm(run):
        return _train_epochs(run, cfg, output_dir, progress)


@contextlib.contextmanager
def _stop_on_sigterm(run: Run) -> Iterator[None]:
    """While training, SIGTERM asks for a checkpoint of the position and a stop (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: Any) -> None:
        logger.warning("SIGTERM: saving the position and stopping after the current iteration")
        run.stop_requested = True

    before = signal.signal(signal.SIGTERM, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _train_epochs(run: Run, cfg: Any, output_dir: Path, progress: bool) -> dict[str, Any]:
    """The epoch loop of ``train`` (spec §9.3 steps 1-6), then the curves."""
    start_epoch, start_iter = run.start.epoch, _mid_epoch_position(run)
    meter_state = run.start.train_state.get("meter") if start_iter else None
    summary: dict[str, Any] = {"start_epoch": start_epoch, "start_iter": start_iter, "resumed_from": run.start.source}
    total_failures = 0
    try:
        for epoch in range(start_epoch, run.max_epoch):
            meter = train_epoch(run, epoch, start_iter if epoch == start_epoch else 0,
                                EpochMeter.from_state(meter_state) if epoch == start_epoch else None, progress)
            total_failures += meter.failures
            means = meter.means()
            train_stats = {
                "_type": "train_epoch", "epoch": f"{epoch + 1}/{run.max_epoch}", "dt": meter.seconds,
                "dt_data": meter.dt_data, "dt_net": meter.dt_net, "eta": "0:00:00",
                "lr": meter.last_lr, **means, **_memory_stats(run.device),
            }
            if meter.failures:
                train_stats["bad_samples"] = meter.failures
            _log_json(train_stats)
            if run.writer is not None:
                run.writer.add_scalar("Train/epoch_loss", means["loss"], epoch + 1)
            last = epoch + 1 == run.max_epoch
            ckpt_due = last or (epoch + 1) % max(1, int(cfg.TRAIN.CHECKPOINT_PERIOD)) == 0
            eval_due = run.val_loader is not None and (last or (epoch + 1) % int(cfg.TRAIN.EVAL_PERIOD) == 0)
            if cfg.BN.USE_PRECISE_STATS and (ckpt_due or eval_due):
                precise_bn(run, epoch)
            entry: dict[str, Any] = {"epoch": epoch + 1, "loss": means["loss"], "lr": meter.last_lr,
                                     "train_top1_err": means["top1_err"], "train_top5_err": means["top5_err"]}
            run.history.append(entry)
            if eval_due:
                val = evaluate(run, epoch, progress)
                entry.update(val_top1_err=val["top1_err"], val_top5_err=val["top5_err"])
            if ckpt_due:
                save(run, checkpointer.epoch_checkpoint_path(output_dir, epoch), epoch, 0, None)
            summary.update(epochs_run=epoch + 1, train=means, bad_samples=total_failures)
            if eval_due:
                summary["val"] = {"top1_err": entry["val_top1_err"], "top5_err": entry["val_top5_err"]}
            if world_info()[0] > 1:  # every rank takes the same decision (a SIGTERM may reach one rank only)
                run.stop_requested = all_reduce_mean([float(run.stop_requested)], run.device)[0] > 0
            if run.stop_requested and epoch + 1 < run.max_epoch:
                if not ckpt_due:
                    save(run, checkpointer.epoch_checkpoint_path(output_dir, epoch), epoch, 0, None)
                raise TrainingStopped(f"stopped by SIGTERM after epoch {epoch + 1}; the position is saved in "
                                      f"{run.last_checkpoint}: run the same command again to resume")
    finally:
        if run.writer is not None:
            run.writer.close()
    from vov3d.engine import distributed as D

    D.barrier()  # rank 0's last checkpoint is written before any rank goes on (e.g. to test it)
    summary["last_checkpoint"] = run.last_checkpoint
    summary["history"] = run.history
    if is_main_process() and run.history:
        from vov3d.engine.plots import plot_training_curves

        path = output_dir / "training_curves.png"
        plot_training_curves(run.history, path, run.iteration_history)
        summary["curves"] = str(path)
    if total_failures:
        logger.warning("training finished; %d bad training sample(s) were skipped and replaced (see the log)",
                       total_failures)
    return summary
