"""Builders: config keys -> model, clips, datasets, optimizer, LR schedule, batch per process (spec §7, §9)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from vov3d.config import ConfigError, builders, check_world, load_config
from vov3d.engine.lr_schedule import LRSchedule
from vov3d.engine.optimizer import build_optimizer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
K400_M = CONFIGS / "Kinetics/vov3d/vov3d_M.yaml"
SS_FINETUNE = CONFIGS / "SSv1/vov3d/finetune/vov3d_M_F32_finetune.yaml"


def test_k400_vov3d_m_optimizer_and_schedule_are_the_originals():
    """Spec §9.1/§9.2: Nesterov SGD, WD 5e-5 and none on BN; cosine over 256 epochs, 35 warm-up epochs from 0.01."""
    cfg = load_config(K400_M)
    assert builders.optimizer_kwargs(cfg) == {
        "method": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "dampening": 0.0,
        "weight_decay": 5e-5, "norm_weight_decay": 0.0,
    }
    kwargs = builders.schedule_kwargs(cfg)
    assert kwargs == {
        "policy": "cosine", "base_lr": 0.1, "max_epoch": 256.0, "cosine_end_lr": 0.0, "steps": (), "lrs": (),
        "warmup_epochs": 35.0, "warmup_start_lr": 0.01,
    }
    schedule = LRSchedule(**kwargs)
    assert schedule(0.0) == pytest.approx(0.01)
    assert schedule(35.0) == pytest.approx(0.1 * (math.cos(math.pi * 35 / 256) + 1) / 2)  # ~0.0955
    assert schedule(128.0) == pytest.approx(0.05)


def test_ss_finetune_schedule_is_the_originals():
    """Spec §9.2: steps [0, 35, 45] with LRS x1, x0.1, x0.01 of 0.05 over 50 epochs; 0.19 warm-up epochs from 1e-4."""
    cfg = load_config(SS_FINETUNE, ["NUM_GPUS", "4"])
    kwargs = builders.schedule_kwargs(cfg)
    assert kwargs["policy"] == "steps_with_relative_lrs"
    assert (kwargs["base_lr"], kwargs["max_epoch"], kwargs["warmup_epochs"], kwargs["warmup_start_lr"]) == (0.05, 50.0, 0.19, 1e-4)
    assert kwargs["steps"] == (0.0, 35.0, 45.0) and kwargs["lrs"][:3] == (1.0, 0.1, 0.01)
    schedule = LRSchedule(**kwargs)
    assert schedule(0.0) == pytest.approx(1e-4)
    assert schedule(0.19) == pytest.approx(0.05)
    assert schedule(40.0) == pytest.approx(0.005)
    assert schedule(49.9) == pytest.approx(0.0005)


def test_the_optimizer_kwargs_build_the_engine_optimizer():
    cfg = load_config(CONFIGS / "Synthetic/tiny.yaml", ["SOLVER.OPTIMIZING_METHOD", "adamw", "BN.WEIGHT_DECAY", "0.001"])
    model = builders.build_model(cfg)
    optimizer = build_optimizer(model, **builders.optimizer_kwargs(cfg))
    assert isinstance(optimizer, torch.optim.AdamW)
    assert sorted({g["weight_decay"] for g in optimizer.param_groups}) == [5e-5, 0.001]


def test_linear_scaling_reference_scales_base_lr_only():
    cfg = load_config(K400_M, ["SOLVER.LINEAR_SCALING_REFERENCE", "256"])
    assert builders.schedule_kwargs(cfg)["base_lr"] == pytest.approx(0.1 * 128 / 256)  # TRAIN.BATCH_SIZE by default
    scaled = builders.schedule_kwargs(cfg, total_batch_size=1024)
    assert scaled["base_lr"] == pytest.approx(0.4)
    assert scaled["warmup_start_lr"] == 0.01  # the warm-up still starts where the recipe says
    assert builders.schedule_kwargs(load_config(K400_M), total_batch_size=1024)["base_lr"] == 0.1  # off by default


def test_base_lr_scale_num_shards_is_a_no_op_with_a_warning(caplog):
    cfg = load_config(K400_M, ["NUM_SHARDS", "2"])
    assert cfg.SOLVER.BASE_LR_SCALE_NUM_SHARDS is True
    with caplog.at_level(logging.WARNING, logger="vov3d"):
        kwargs = builders.schedule_kwargs(cfg)
    assert kwargs["base_lr"] == 0.1
    assert "BASE_LR_SCALE_NUM_SHARDS has no effect" in caplog.text and "LINEAR_SCALING_REFERENCE" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vov3d"):
        builders.schedule_kwargs(load_config(K400_M))  # one machine: nothing to say
    assert caplog.text == ""


def test_per_process_batch_size_divides_the_total():
    cfg = load_config(K400_M)
    assert builders.per_process_batch_size(cfg, "train", 8) == 16
    assert builders.per_process_batch_size(cfg, "val", 8) == 16  # val uses TRAIN.BATCH_SIZE, as the original
    assert builders.per_process_batch_size(cfg, "test", 8) == 8
    assert builders.per_process_batch_size(cfg, "train", 1) == 128
    with pytest.raises(ConfigError) as info:
        builders.per_process_batch_size(cfg, "train", 3)
    assert info.value.key == "TRAIN.BATCH_SIZE" and "3 processes" in str(info.value)
    with pytest.raises(ConfigError, match="TEST.BATCH_SIZE"):
        builders.per_process_batch_size(cfg, "test", 5)


def test_check_world_checks_batches_and_sync_bn_groups():
    cfg = load_config(SS_FINETUNE, ["NUM_GPUS", "0", "TEST.BATCH_SIZE", "64"])  # CPU: process counts unknown at load
    check_world(cfg, 8, 4)
    check_world(cfg, 16, 8)
    with pytest.raises(ConfigError) as info:
        check_world(cfg, 6, 2)
    keys = {p.key for p in info.value.problems}
    assert keys == {"TRAIN.BATCH_SIZE", "TEST.BATCH_SIZE", "BN.NUM_SYNC_DEVICES"}
    assert "local world size 2" in str(info.value)
    check_world(load_config(SS_FINETUNE, ["NUM_GPUS", "0", "BN.GLOBAL_SYNC", "True"]), 2, 2)  # one group of all
    with pytest.raises(ValueError, match="world_size"):
        check_world(cfg, 0, 1)


def test_model_kwargs_follow_the_config():
    cfg = load_config(CONFIGS / "SSv2/x3d/x3d_M.yaml",
                      ["MODEL.HEAD_POOL", "original", "MODEL.DROPOUT_RATE", "0.3", "MODEL.FC_INIT_STD", "0.02"])
    assert builders.model_kwargs(cfg) == {
        "num_classes": 174, "dropout": 0.3, "head_dim": 2048, "head_pool": "original", "num_frames": 16,
        "train_crop_size": 224, "fc_init_std": 0.02, "zero_init_final_bn": True,
    }
    model = builders.build_model(cfg)
    assert model.head.pool == "original" and model.head.pool_size == (16, 7, 7)
    assert model.head.dropout.p == 0.3


def test_build_dataset_opens_the_split_the_config_names(tmp_path):
    from vov3d.data.synth import generate_dataset

    summary = generate_dataset(tmp_path, "kinetics", num_train=2, num_val=2, num_test=2,
                               frame_size=(48, 32), num_frames=16, num_workers=1)
    root = summary["formats"]["kinetics"]["root"]
    cfg = load_config(CONFIGS / "Synthetic/tiny.yaml", ["DATA.PATH_TO_DATA_DIR", str(root), "DATA.SAMPLING_RATE", "2"])
    train = builders.build_dataset(cfg, "train")
    assert len(train) == 2
    clip, label, index, meta = train[0]
    assert tuple(clip.shape) == (3, 4, 32, 32) and 0 <= label < 12
    test = builders.build_dataset(cfg, "test")
    assert len(test) == 2 * 2  # 2 videos x (2 clips x 1 crop)
    assert builders.dataset_format(cfg, "test") == "kinetics"
    empty = load_config(CONFIGS / "Synthetic/tiny.yaml", ["DATA.PATH_TO_DATA_DIR", ""])
    with pytest.raises(ConfigError, match="DATA.PATH_TO_DATA_DIR: no data folder"):
        builders.build_dataset(empty, "train")


def test_dataset_format_per_split():
    cfg = load_config(CONFIGS / "SSv2/vov3d/vov3d_M_F16.yaml", ["DATA.SSV2_SOURCE", "video", "TEST.DATASET", "ssv1"])
    assert builders.dataset_format(cfg, "train") == "ssv2-video"
    assert builders.dataset_format(cfg, "val") == "ssv2-video"
    assert builders.dataset_format(cfg, "test") == "ssv1"
    capitalised = load_config(None, ["TRAIN.DATASET", "Kinetics", "TEST.DATASET", "SSv2"])  # any case, as the original
    assert (capitalised.TRAIN.DATASET, capitalised.TEST.DATASET) == ("kinetics", "ssv2")
