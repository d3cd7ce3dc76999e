"""The one place where config keys become builder arguments: model, clips, datasets, optimizer, schedule.

Nothing else in vov3d reads ``cfg.MODEL``, ``cfg.VOV3D``, ``cfg.X3D``, ``cfg.DATA``'s clip keys or
``cfg.SOLVER`` to build something; the engine calls these functions (spec §7, §9).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from yacs.config import CfgNode

from vov3d.config.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from torch import nn

    from vov3d.data import ClipDataset, ClipParams

logger = logging.getLogger(__name__)

VOV3D_MODELS = {
    (31, 4, 48): "vov3d_m",
    (31, 5, 40): "vov3d_m_v2",
    (70, 5, 48): "vov3d_l",
}
"""(VOV3D.DEPTH, VOV3D.NUM_CONV, VOV3D.INNER_CH) -> registered model (spec §0): VoV3D-M as in the
paper (Dec 2020), VoV3D-M as redefined in April 2021, VoV3D-L. The original's DEPTH 31 meant
blocks (1,1,2,2) before April 2021 and (1,2,3,2) after, each time with these NUM_CONV/INNER_CH."""

X3D_MODELS = {2.2: "x3d_m", 5.0: "x3d_l"}
"""X3D.DEPTH_FACTOR -> registered model, with WIDTH_FACTOR 2.0, BOTTLENECK_FACTOR 2.25, DIM_C1 12."""

_ARCHS = {"VoV3D": "vov3d", "X3D": "x3d"}


def model_name(cfg: CfgNode) -> str:
    """The registered model the config describes: vov3d_m | vov3d_m_v2 | vov3d_l | x3d_m | x3d_l.

    Raises ConfigError naming the keys when MODEL.MODEL_NAME/ARCH and the VOV3D or X3D keys match
    no registered model.
    """
    name = cfg.MODEL.MODEL_NAME
    if name not in _ARCHS:
        near = [k for k in _ARCHS if k.lower() == str(name).lower()]
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError([ConfigProblem(f"expected VoV3D or X3D, got {name!r}{hint}", ("MODEL.MODEL_NAME",))])
    if str(cfg.MODEL.ARCH).lower() != _ARCHS[name]:
        raise ConfigError([ConfigProblem(
            f"MODEL_NAME {name} needs ARCH {_ARCHS[name]}, got {cfg.MODEL.ARCH!r}", ("MODEL.ARCH", "MODEL.MODEL_NAME"))])
    if name == "VoV3D":
        v = cfg.VOV3D
        if v.TRANS_FUNC != "t_osa_2plus1_transform":
            raise ConfigError([ConfigProblem(
                f"expected t_osa_2plus1_transform (the only VoV3D block), got {v.TRANS_FUNC!r}", ("VOV3D.TRANS_FUNC",))])
        found = VOV3D_MODELS.get((v.DEPTH, v.NUM_CONV, v.INNER_CH))
        if found is None:
            known = "; ".join(f"{d}, {n}, {k} ({m})" for (d, n, k), m in VOV3D_MODELS.items())
            raise ConfigError([ConfigProblem(
                f"({v.DEPTH}, {v.NUM_CONV}, {v.INNER_CH}) matches no VoV3D model; expected one of: {known}",
                ("VOV3D.DEPTH", "VOV3D.NUM_CONV", "VOV3D.INNER_CH"))])
        return found
    x = cfg.X3D
    if cfg.RESNET.TRANS_FUNC != "x3d_transform":
        raise ConfigError([ConfigProblem(
            f"X3D needs x3d_transform, got {cfg.RESNET.TRANS_FUNC!r}", ("RESNET.TRANS_FUNC",))])
    found = X3D_MODELS.get(x.DEPTH_FACTOR)
    if found is None or (x.WIDTH_FACTOR, x.BOTTLENECK_FACTOR, x.DIM_C1) != (2.0, 2.25, 12):
        raise ConfigError([ConfigProblem(
            f"({x.WIDTH_FACTOR}, {x.DEPTH_FACTOR}, {x.BOTTLENECK_FACTOR}, {x.DIM_C1}) matches no X3D model; expected "
            "(2.0, 2.2, 2.25, 12) for X3D-M or (2.0, 5.0, 2.25, 12) for X3D-L",
            ("X3D.WIDTH_FACTOR", "X3D.DEPTH_FACTOR", "X3D.BOTTLENECK_FACTOR", "X3D.DIM_C1"))])
    return found


def model_kwargs(cfg: CfgNode) -> dict[str, Any]:
    """Keyword arguments of ``vov3d.models.create_model(model_name(cfg), ...)`` (spec §4, §5)."""
    return {
        "num_classes": cfg.MODEL.NUM_CLASSES,
        "dropout": cfg.MODEL.DROPOUT_RATE,
        "head_dim": cfg.X3D.DIM_C5,
        "head_pool": cfg.MODEL.HEAD_POOL,
        "num_frames": cfg.DATA.NUM_FRAMES,
        "train_crop_size": cfg.DATA.TRAIN_CROP_SIZE,
        "fc_init_std": cfg.MODEL.FC_INIT_STD,
        "zero_init_final_bn": cfg.RESNET.ZERO_INIT_FINAL_BN,
    }


def build_model(cfg: CfgNode) -> "nn.Module":
    """The model of the config with fresh weights: a pure network with plain BatchNorm3d.

    Sync BN, the training backend, mixed precision and DDP are the engine's business.
    """
    from vov3d.models import create_model

    return create_model(model_name(cfg), **model_kwargs(cfg))


def clip_params(cfg: CfgNode) -> "ClipParams":
    """``vov3d.data.ClipParams`` from DATA.* and the test views (spec §7, §8)."""
    from vov3d.data import ClipParams

    d = cfg.DATA
    return ClipParams(
        num_frames=d.NUM_FRAMES,
        sampling_rate=d.SAMPLING_RATE,
        target_fps=float(d.TARGET_FPS),
        train_jitter_scales=tuple(d.TRAIN_JITTER_SCALES),
        train_crop_size=d.TRAIN_CROP_SIZE,
        test_crop_size=d.TEST_CROP_SIZE,
        inverse_uniform_sample=d.INV_UNIFORM_SAMPLE,
        random_flip=d.RANDOM_FLIP,
        mean=tuple(d.MEAN),
        std=tuple(d.STD),
        reverse_input_channel=d.REVERSE_INPUT_CHANNEL,
        num_ensemble_views=cfg.TEST.NUM_ENSEMBLE_VIEWS,
        num_spatial_crops=cfg.TEST.NUM_SPATIAL_CROPS,
    )


def dataset_format(cfg: CfgNode, split: str) -> str:
    """The ``vov3d.data.build_dataset`` format of `split`: TRAIN.DATASET for train/val, TEST.DATASET for test.

    ssv2 with DATA.SSV2_SOURCE video is "ssv2-video".
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    name = str((cfg.TEST if split == "test" else cfg.TRAIN).DATASET).lower()
    if name == "ssv2" and cfg.DATA.SSV2_SOURCE == "video":
        return "ssv2-video"
    return name


def build_dataset(cfg: CfgNode, split: str, **kwargs: Any) -> "ClipDataset":
    """The dataset of `split` (train | val | test) as the config describes it.

    Reads DATA.PATH_TO_DATA_DIR, DATA.PATH_PREFIX, the clip keys (:func:`clip_params`), RNG_SEED,
    and for Kinetics DATA.PATH_LABEL_SEPARATOR and MODEL.NUM_CLASSES (labels are checked against
    it). Other keyword arguments (``on_error``, ``decoder_threads``, ...) go to
    ``vov3d.data.build_dataset``.
    """
    from vov3d.data import build_dataset as open_dataset

    fmt = dataset_format(cfg, split)
    if not cfg.DATA.PATH_TO_DATA_DIR:
        key = "TEST.DATASET" if split == "test" else "TRAIN.DATASET"
        raise ConfigError([ConfigProblem(
            f"no data folder given for the {fmt} {split} split ({key}); set it to the folder of the annotation files",
            ("DATA.PATH_TO_DATA_DIR",))])
    if fmt == "kinetics":
        kwargs.setdefault("separator", cfg.DATA.PATH_LABEL_SEPARATOR)
        kwargs.setdefault("num_classes", cfg.MODEL.NUM_CLASSES)
    return open_dataset(
        fmt,
        cfg.DATA.PATH_TO_DATA_DIR,
        split,
        params=clip_params(cfg),
        seed=cfg.RNG_SEED,
        path_prefix=cfg.DATA.PATH_PREFIX,
        **kwargs,
    )


def optimizer_kwargs(cfg: CfgNode) -> dict[str, Any]:
    """Keyword arguments of ``engine.optimizer.build_optimizer`` besides the model (spec §9.1).

    ``lr`` is SOLVER.BASE_LR; the engine sets the scheduled rate before every iteration.
    ``norm_weight_decay`` (BN.WEIGHT_DECAY) applies to every normalisation parameter.
    """
    s = cfg.SOLVER
    return {
        "method": s.OPTIMIZING_METHOD,
        "lr": s.BASE_LR,
        "momentum": s.MOMENTUM,
        "nesterov": s.NESTEROV,
        "dampening": s.DAMPENING,
        "weight_decay": s.WEIGHT_DECAY,
        "norm_weight_decay": cfg.BN.WEIGHT_DECAY,
    }


def scaled_base_lr(cfg: CfgNode, total_batch_size: int | None = None) -> float:
    """SOLVER.BASE_LR, times total batch / SOLVER.LINEAR_SCALING_REFERENCE when that is > 0 (spec §11.7).

    `total_batch_size` defaults to TRAIN.BATCH_SIZE (the total over all processes).
    """
    base = float(cfg.SOLVER.BASE_LR)
    reference = cfg.SOLVER.LINEAR_SCALING_REFERENCE
    if reference > 0:
        total = cfg.TRAIN.BATCH_SIZE if total_batch_size is None else total_batch_size
        return base * total / reference
    return base


def schedule_kwargs(cfg: CfgNode, total_batch_size: int | None = None) -> dict[str, Any]:
    """The fields of ``engine.lr_schedule.LRSchedule`` (spec §9.2), BASE_LR already scaled.

    Only BASE_LR is scaled by SOLVER.LINEAR_SCALING_REFERENCE: the warm-up starts from
    WARMUP_START_LR as configured (gradual warm-up to the scaled rate, as in Goyal et al.).
    SOLVER.BASE_LR_SCALE_NUM_SHARDS has no effect, as in the original (spec §11.7); a warning
    says so when it is True on several machines.
    """
    s = cfg.SOLVER
    if s.BASE_LR_SCALE_NUM_SHARDS and cfg.NUM_SHARDS > 1:
        logger.warning(
            "SOLVER.BASE_LR_SCALE_NUM_SHARDS has no effect (nor had it in the original, spec §11.7): BASE_LR is not "
            "multiplied by NUM_SHARDS=%d; set SOLVER.LINEAR_SCALING_REFERENCE to scale it with the batch size",
            cfg.NUM_SHARDS,
        )
    return {
        "policy": s.LR_POLICY,
        "base_lr": scaled_base_lr(cfg, total_batch_size),
        "max_epoch": float(s.MAX_EPOCH),
        "cosine_end_lr": float(s.COSINE_END_LR),
        "steps": tuple(float(x) for x in s.STEPS),
        "lrs": tuple(float(x) for x in s.LRS),
        "warmup_epochs": float(s.WARMUP_EPOCHS),
        "warmup_start_lr": float(s.WARMUP_START_LR),
    }


def per_process_batch_size(cfg: CfgNode, split: str, world_size: int) -> int:
    """Clips per iteration in each of `world_size` processes: the split's total batch / world_size.

    TRAIN.BATCH_SIZE for train and val, TEST.BATCH_SIZE for test; both are totals over all
    processes of all machines. A total that does not divide evenly is a ConfigError.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    key = "TEST.BATCH_SIZE" if split == "test" else "TRAIN.BATCH_SIZE"
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    total = cfg.TEST.BATCH_SIZE if split == "test" else cfg.TRAIN.BATCH_SIZE
    if total % world_size:
        raise ConfigError([ConfigProblem(
            f"the batch ({total}) must divide evenly between the {world_size} processes of the job", (key,))])
    return total // world_size
