"""Range, choice and consistency checks of a merged config (spec §7, §9, §11.7, §11.15).

``validate(cfg)`` returns every problem found (``loading.load_config`` adds where each value came
from and raises). ``check_world(cfg, world_size, local_world_size)`` adds the checks that need the
job's process counts; the engine calls it once the processes are known.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from yacs.config import CfgNode

from vov3d.config.errors import ConfigError, ConfigProblem, nearest_choices

DATASETS = ("kinetics", "ssv1", "ssv2")
LR_POLICIES = ("cosine", "steps_with_relative_lrs")
NORM_TYPES = ("batchnorm", "sync_batchnorm")
OPTIMIZERS = ("sgd", "adamw")
BACKENDS = ("auto", "kernels", "channels_last", "compiled", "eager")
MIXED_PRECISION = ("auto", "off", "bf16", "fp16")
HEAD_POOLS = ("global", "original")
DIST_BACKENDS = ("nccl", "gloo")


def _get(cfg: CfgNode, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class _Checks:
    def __init__(self, cfg: CfgNode) -> None:
        self.cfg = cfg
        self.problems: list[ConfigProblem] = []

    def __call__(self, key: str) -> Any:
        return _get(self.cfg, key)

    def fail(self, keys: str | Sequence[str], message: str, suggestions: Iterable[str] = ()) -> None:
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        self.problems.append(ConfigProblem(message, keys, (), tuple(suggestions)))

    def at_least(self, key: str, low: int) -> None:
        value = self(key)
        if not (_is_int(value) and value >= low):
            self.fail(key, f"expected an integer >= {low}, got {value!r}")

    def number(self, key: str, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> None:
        value = self(key)
        ok = _is_number(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
            hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
            self.fail(key, f"expected a number {' and '.join(p for p in (lo, hi) if p)}, got {value!r}")

    def choice(self, key: str, choices: Sequence[Any]) -> None:
        value = self(key)
        if value not in choices:
            near = nearest_choices(value, [str(c) for c in choices])
            hint = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
            self.fail(key, f"expected one of {', '.join(map(str, choices))}; got {value!r}{hint}")

    def fixed(self, key: str, value: Any, why: str) -> None:
        if self(key) != value:
            self.fail(key, f"must be {value!r}: {why}; got {self(key)!r}")

    def numbers(self, key: str, length: int | None = None, positive: bool = False, integers: bool = False) -> list:
        value = list(self(key))
        kind = "integers" if integers else "numbers"
        ok = all((_is_int(v) if integers else _is_number(v)) and (v > 0 or not positive) for v in value)
        if length is not None and len(value) != length:
            ok = False
        if not ok:
            size = f"{length} " if length is not None else ""
            self.fail(key, f"expected a list of {size}{'positive ' if positive else ''}{kind}, got {value!r}")
            return []
        return value


def validate(cfg: CfgNode) -> list[ConfigProblem]:
    """Every range, choice and consistency problem of a merged config (without process counts)."""
    from vov3d.config.builders import model_name  # the model table lives with the builders

    c = _Checks(cfg)
    # run-wide
    c.at_least("NUM_GPUS", 0)
    c.at_least("NUM_SHARDS", 1)
    c.at_least("SHARD_ID", 0)
    if _is_int(c("SHARD_ID")) and _is_int(c("NUM_SHARDS")) and c("SHARD_ID") >= c("NUM_SHARDS"):
        c.fail(("SHARD_ID", "NUM_SHARDS"), f"SHARD_ID must be < NUM_SHARDS, got {c('SHARD_ID')} and {c('NUM_SHARDS')}")
    c.at_least("RNG_SEED", 0)
    if not c("OUTPUT_DIR"):
        c.fail("OUTPUT_DIR", "expected a folder, got an empty string")
    c.at_least("LOG_PERIOD", 1)
    c.choice("DIST_BACKEND", DIST_BACKENDS)
    c.at_least("DIST_TIMEOUT", 1)

    # BN
    c.at_least("BN.NUM_BATCHES_PRECISE", 1 if c("BN.USE_PRECISE_STATS") else 0)
    c.number("BN.WEIGHT_DECAY", 0)
    c.choice("BN.NORM_TYPE", NORM_TYPES)
    c.fixed("BN.NUM_SPLITS", 1, "sub_batchnorm is not supported")
    c.at_least("BN.NUM_SYNC_DEVICES", 1)
    sync_devices = c("BN.NUM_SYNC_DEVICES")
    if (c("BN.NORM_TYPE") == "sync_batchnorm" and not c("BN.GLOBAL_SYNC") and _is_int(sync_devices)
            and sync_devices > 1 and _is_int(c("NUM_GPUS")) and c("NUM_GPUS") > 0 and c("NUM_GPUS") % sync_devices):
        c.fail(("BN.NUM_SYNC_DEVICES", "NUM_GPUS"), _sync_message(sync_devices, c("NUM_GPUS"), "NUM_GPUS"))

    # TRAIN / TEST
    for split in ("TRAIN", "TEST"):
        c.choice(f"{split}.DATASET", DATASETS)
        c.at_least(f"{split}.BATCH_SIZE", 1)
        c.fixed(f"{split}.CHECKPOINT_TYPE", "pytorch", "caffe2 checkpoints are not supported")
        if _is_int(c("NUM_GPUS")) and c("NUM_GPUS") > 0 and _is_int(c(f"{split}.BATCH_SIZE")) \
                and c(f"{split}.BATCH_SIZE") % c("NUM_GPUS"):
            c.fail((f"{split}.BATCH_SIZE", "NUM_GPUS"),
                   f"the batch ({c(f'{split}.BATCH_SIZE')}) must divide evenly between the NUM_GPUS {c('NUM_GPUS')} processes")
    c.at_least("TRAIN.EVAL_PERIOD", 1)
    c.at_least("TRAIN.CHECKPOINT_PERIOD", 1)
    c.at_least("TRAIN.CHECKPOINT_ITER_PERIOD", 0)
    c.fixed("TRAIN.CHECKPOINT_INFLATE", False, "2D-to-3D inflation is not supported")
    patterns = c("TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN")
    if not all(isinstance(p, str) and p for p in patterns):
        c.fail("TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN", f"expected a list of name prefixes, got {list(patterns)!r}")
    c.choice("TRAIN.BACKEND", BACKENDS)
    c.choice("TRAIN.MIXED_PRECISION", MIXED_PRECISION)
    c.at_least("TEST.NUM_ENSEMBLE_VIEWS", 1)
    c.choice("TEST.NUM_SPATIAL_CROPS", (1, 3))

    # DATA
    c.at_least("DATA.NUM_FRAMES", 1)
    c.at_least("DATA.SAMPLING_RATE", 1)
    c.number("DATA.TARGET_FPS", 0, low_open=True)
    if not c("DATA.PATH_LABEL_SEPARATOR"):
        c.fail("DATA.PATH_LABEL_SEPARATOR", "expected a separator such as ' ' or ',', got an empty string")
    scales = c.numbers("DATA.TRAIN_JITTER_SCALES", 2, positive=True, integers=True)
    if scales and scales[0] > scales[1]:
        c.fail("DATA.TRAIN_JITTER_SCALES", f"expected [min, max] with min <= max, got {scales}")
    c.at_least("DATA.TRAIN_CROP_SIZE", 1)
    c.at_least("DATA.TEST_CROP_SIZE", 1)
    if scales and _is_int(c("DATA.TRAIN_CROP_SIZE")) and c("DATA.TRAIN_CROP_SIZE") > scales[0]:
        c.fail(("DATA.TRAIN_CROP_SIZE", "DATA.TRAIN_JITTER_SCALES"),
               f"the training crop ({c('DATA.TRAIN_CROP_SIZE')}) must fit in the smallest jitter scale ({scales[0]})")
    c.fixed("DATA.INPUT_CHANNEL_NUM", [3], "VoV3D and X3D take one RGB pathway")
    c.numbers("DATA.MEAN", 3)
    c.numbers("DATA.STD", 3, positive=True)
    c.choice("DATA.DECODING_BACKEND", ("pyav", "torchvision"))
    c.fixed("DATA.MULTI_LABEL", False, "multi-label training is not supported")
    c.choice("DATA.ENSEMBLE_METHOD", ("sum", "max"))
    c.choice("DATA.SSV2_SOURCE", ("frames", "video"))

    # MODEL
    c.at_least("MODEL.NUM_CLASSES", 1)
    c.fixed("MODEL.LOSS_FUNC", "cross_entropy", "the only loss vov3d trains with")
    c.number("MODEL.DROPOUT_RATE", 0, 1, high_open=True)
    c.fixed("MODEL.DROPCONNECT_RATE", 0.0, "drop-connect is not supported")
    c.number("MODEL.FC_INIT_STD", 0, low_open=True)
    c.fixed("MODEL.HEAD_ACT", "softmax", "the test ensemble sums softmax scores")
    c.choice("MODEL.HEAD_POOL", HEAD_POOLS)
    if c("MODEL.HEAD_POOL") == "original" and _is_int(c("DATA.TEST_CROP_SIZE")) and _is_int(c("DATA.TRAIN_CROP_SIZE")) \
            and math.ceil(c("DATA.TEST_CROP_SIZE") / 32) < math.ceil(c("DATA.TRAIN_CROP_SIZE") / 32):
        c.fail(("DATA.TEST_CROP_SIZE", "MODEL.HEAD_POOL"),
               "with the original head pool the test crop cannot be smaller than the training crop "
               f"(pool sized for {c('DATA.TRAIN_CROP_SIZE')} px, spec §4); use MODEL.HEAD_POOL global")
    c.at_least("X3D.DIM_C5", 1)
    c.at_least("X3D.DIM_C1", 1)
    for key in ("X3D.WIDTH_FACTOR", "X3D.DEPTH_FACTOR", "X3D.BOTTLENECK_FACTOR"):
        c.number(key, 0, low_open=True)
    c.fixed("X3D.SCALE_RES2", False, "only the X3D variant of the original configs is built")
    c.fixed("X3D.BN_LIN5", False, "the head has no BN after lin_5 (spec §4)")
    c.fixed("X3D.CHANNELWISE_3x3x3", True, "X3D's 3x3x3 convolutions are depthwise (spec §3.2)")
    c.fixed("VOV3D.SPATIAL_STRIDES", [[2], [2], [2], [2]], "every VoV3D stage starts with a stride-2 block (spec §2.1)")
    c.fixed("VOV3D.INNER_MULTIPLIER", [1, 2, 4, 8], "fixed by the architecture (spec §2.1)")
    c.fixed("VOV3D.OUT_MULTIPLIER", [0.5, 1.0, 2, 4], "fixed by the architecture (spec §2.1)")
    if _has_entries(c("NONLOCAL.LOCATION")):
        c.fail("NONLOCAL.LOCATION",
               f"non-local blocks are not supported; expected empty locations, got {c('NONLOCAL.LOCATION')!r}")
    if not c.problems:
        try:
            model_name(cfg)
        except ConfigError as error:
            c.problems.extend(error.problems)

    # SOLVER
    c.number("SOLVER.BASE_LR", 0, low_open=True)
    c.choice("SOLVER.LR_POLICY", LR_POLICIES)
    c.number("SOLVER.COSINE_END_LR", 0)
    c.at_least("SOLVER.MAX_EPOCH", 1)
    c.number("SOLVER.MOMENTUM", 0, 1, high_open=True)
    c.number("SOLVER.DAMPENING", 0, 1)
    c.number("SOLVER.WEIGHT_DECAY", 0)
    c.number("SOLVER.WARMUP_EPOCHS", 0)
    c.number("SOLVER.WARMUP_START_LR", 0)
    c.choice("SOLVER.OPTIMIZING_METHOD", OPTIMIZERS)
    nesterov_ok = c("SOLVER.MOMENTUM") > 0 and c("SOLVER.DAMPENING") == 0
    if c("SOLVER.OPTIMIZING_METHOD") == "sgd" and c("SOLVER.NESTEROV") and not nesterov_ok:
        c.fail(("SOLVER.NESTEROV", "SOLVER.MOMENTUM", "SOLVER.DAMPENING"),
               "Nesterov momentum needs MOMENTUM > 0 and DAMPENING 0")
    max_epoch = c("SOLVER.MAX_EPOCH")
    if _is_int(max_epoch) and _is_number(c("SOLVER.WARMUP_EPOCHS")) and c("SOLVER.WARMUP_EPOCHS") > max_epoch:
        c.fail(("SOLVER.WARMUP_EPOCHS", "SOLVER.MAX_EPOCH"),
               f"warm-up ({c('SOLVER.WARMUP_EPOCHS')}) is longer than training ({max_epoch})")
    if c("SOLVER.LR_POLICY") == "steps_with_relative_lrs":
        steps = c.numbers("SOLVER.STEPS")
        lrs = c.numbers("SOLVER.LRS", positive=True)
        if not steps or steps[0] != 0:
            c.fail("SOLVER.STEPS", "expected the epochs where the LR changes, starting with 0 (e.g. [0, 35, 45]), "
                   f"got {list(c('SOLVER.STEPS'))!r}")
        elif any(b <= a for a, b in zip(steps, steps[1:])):
            c.fail("SOLVER.STEPS", f"expected increasing epochs, got {steps}")
        elif _is_int(max_epoch) and steps[-1] >= max_epoch:
            c.fail(("SOLVER.STEPS", "SOLVER.MAX_EPOCH"), f"step {steps[-1]} is not before MAX_EPOCH {max_epoch}")
        if steps and len(lrs) < len(steps):
            c.fail(("SOLVER.LRS", "SOLVER.STEPS"), f"expected one relative LR for each of the {len(steps)} steps, "
                   f"got {len(lrs)}: {list(c('SOLVER.LRS'))!r}")
    c.at_least("SOLVER.LINEAR_SCALING_REFERENCE", 0)
    c.number("SOLVER.LABEL_SMOOTHING", 0, 1, high_open=True)
    c.at_least("SOLVER.GRAD_ACCUM_STEPS", 1)

    # MIXUP / EMA
    c.number("MIXUP.ALPHA", 0)
    c.number("MIXUP.CUTMIX_ALPHA", 0)
    c.number("MIXUP.PROB", 0, 1)
    c.number("MIXUP.SWITCH_PROB", 0, 1)
    if c("MIXUP.ENABLE") and _is_number(c("MIXUP.ALPHA")) and _is_number(c("MIXUP.CUTMIX_ALPHA")) \
            and c("MIXUP.ALPHA") <= 0 and c("MIXUP.CUTMIX_ALPHA") <= 0:
        c.fail(("MIXUP.ENABLE", "MIXUP.ALPHA", "MIXUP.CUTMIX_ALPHA"),
               "mixup is on but both ALPHA and CUTMIX_ALPHA are 0")
    c.number("EMA.DECAY", 0, 1, low_open=True, high_open=True)

    # loaders, logging
    c.at_least("DATA_LOADER.NUM_WORKERS", 0)
    c.at_least("BENCHMARK.NUM_EPOCHS", 1)
    c.at_least("BENCHMARK.LOG_PERIOD", 1)
    return c.problems


def _has_entries(value: Any) -> bool:
    """True if nested lists hold anything but further (empty) lists."""
    if isinstance(value, (list, tuple)):
        return any(_has_entries(v) for v in value)
    return True


def _sync_message(sync_devices: int, local: int, local_name: str) -> str:
    return (f"sync_batchnorm over groups of {sync_devices} processes needs a multiple of {sync_devices} "
            f"processes per machine, got {local_name} {local} (spec §11.15); on one GPU or a CPU use "
            "BN.NORM_TYPE batchnorm, or set BN.NUM_SYNC_DEVICES to a divisor of it")


def check_world(cfg: CfgNode, world_size: int, local_world_size: int) -> None:
    """Check the config against the job's processes: all (`world_size`) and on this machine.

    Raises ConfigError when a batch size does not divide evenly between the processes or
    sync_batchnorm's groups (BN.NUM_SYNC_DEVICES) do not divide the processes per machine
    (spec §11.15).
    """
    problems: list[ConfigProblem] = []
    for name, value in (("world_size", world_size), ("local_world_size", local_world_size)):
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if world_size % local_world_size:
        raise ValueError(f"world_size {world_size} is not a multiple of local_world_size {local_world_size}")
    for split, enabled in (("TRAIN", cfg.TRAIN.ENABLE), ("TEST", cfg.TEST.ENABLE)):
        batch = cfg[split].BATCH_SIZE
        if enabled and batch % world_size:
            problems.append(ConfigProblem(
                f"the batch ({batch}) must divide evenly between the job's {world_size} processes",
                (f"{split}.BATCH_SIZE",)))
    devices = cfg.BN.NUM_SYNC_DEVICES
    if cfg.BN.NORM_TYPE == "sync_batchnorm" and not cfg.BN.GLOBAL_SYNC and local_world_size % devices:
        message = _sync_message(devices, local_world_size, "local world size")
        problems.append(ConfigProblem(message, ("BN.NUM_SYNC_DEVICES",)))
    if problems:
        raise ConfigError(problems)
