"""load_config's merge order and overrides, _BASE_, dump_config, and the keys the engine relies on (spec §7, §10)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from vov3d.config import ConfigError, all_keys, dump_config, get_cfg, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# The keys the contract between the config and the engine fixes (names must not change).
ENGINE_KEYS = """
NUM_GPUS NUM_SHARDS SHARD_ID RNG_SEED OUTPUT_DIR LOG_PERIOD LOG_MODEL_INFO DIST_BACKEND DIST_TIMEOUT
TRAIN.ENABLE TRAIN.DATASET TRAIN.BATCH_SIZE TRAIN.EVAL_PERIOD TRAIN.CHECKPOINT_PERIOD TRAIN.AUTO_RESUME
TRAIN.CHECKPOINT_FILE_PATH TRAIN.CHECKPOINT_TYPE TRAIN.CHECKPOINT_EPOCH_RESET TRAIN.CHECKPOINT_INFLATE
TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN TRAIN.CHECKPOINT_ITER_PERIOD TRAIN.FINETUNE_LOAD_WHAT_FITS TRAIN.BACKEND
TRAIN.MIXED_PRECISION TRAIN.CHANNELS_LAST TRAIN.COMPILE
TEST.ENABLE TEST.DATASET TEST.BATCH_SIZE TEST.CHECKPOINT_FILE_PATH TEST.CHECKPOINT_TYPE TEST.NUM_ENSEMBLE_VIEWS
TEST.NUM_SPATIAL_CROPS TEST.SAVE_RESULTS_PATH
DATA.PATH_TO_DATA_DIR DATA.PATH_PREFIX DATA.PATH_LABEL_SEPARATOR DATA.NUM_FRAMES DATA.SAMPLING_RATE DATA.TARGET_FPS
DATA.TRAIN_JITTER_SCALES DATA.TRAIN_CROP_SIZE DATA.TEST_CROP_SIZE DATA.INPUT_CHANNEL_NUM DATA.MEAN DATA.STD
DATA.INV_UNIFORM_SAMPLE DATA.RANDOM_FLIP DATA.REVERSE_INPUT_CHANNEL DATA.MULTI_LABEL DATA.ENSEMBLE_METHOD
DATA.DECODING_BACKEND DATA.SSV2_SOURCE DATA.CLASS_NAMES
MODEL.ARCH MODEL.MODEL_NAME MODEL.NUM_CLASSES MODEL.LOSS_FUNC MODEL.DROPOUT_RATE MODEL.HEAD_ACT MODEL.FC_INIT_STD
MODEL.DROPCONNECT_RATE MODEL.HEAD_POOL
BN.USE_PRECISE_STATS BN.NUM_BATCHES_PRECISE BN.WEIGHT_DECAY BN.NORM_TYPE BN.NUM_SYNC_DEVICES BN.GLOBAL_SYNC
SOLVER.BASE_LR SOLVER.LR_POLICY SOLVER.COSINE_END_LR SOLVER.STEPS SOLVER.LRS SOLVER.MAX_EPOCH SOLVER.MOMENTUM
SOLVER.DAMPENING SOLVER.NESTEROV SOLVER.WEIGHT_DECAY SOLVER.WARMUP_EPOCHS SOLVER.WARMUP_START_LR
SOLVER.OPTIMIZING_METHOD SOLVER.BASE_LR_SCALE_NUM_SHARDS SOLVER.LINEAR_SCALING_REFERENCE SOLVER.LABEL_SMOOTHING
SOLVER.GRAD_ACCUM_STEPS
MIXUP.ENABLE MIXUP.ALPHA MIXUP.CUTMIX_ALPHA MIXUP.PROB MIXUP.SWITCH_PROB EMA.ENABLE EMA.DECAY
DATA_LOADER.NUM_WORKERS DATA_LOADER.PIN_MEMORY TENSORBOARD.ENABLE TENSORBOARD.LOG_DIR
BENCHMARK.NUM_EPOCHS BENCHMARK.LOG_PERIOD
""".split()


def test_the_engine_keys_exist_and_the_defaults_load():
    assert set(ENGINE_KEYS) <= set(all_keys())
    cfg = load_config()
    assert cfg.is_frozen()
    # Ours are off (or neutral) by default.
    assert (cfg.MIXUP.ENABLE, cfg.EMA.ENABLE, cfg.SOLVER.LABEL_SMOOTHING, cfg.SOLVER.GRAD_ACCUM_STEPS) == (False, False, 0.0, 1)
    assert (cfg.SOLVER.LINEAR_SCALING_REFERENCE, cfg.TRAIN.CHECKPOINT_ITER_PERIOD, cfg.TRAIN.FINETUNE_LOAD_WHAT_FITS) == (0, 0, False)


def test_get_cfg_returns_independent_copies():
    a, b = get_cfg(), get_cfg()
    a.SOLVER.BASE_LR = 9.0
    assert b.SOLVER.BASE_LR == 0.1 and get_cfg().SOLVER.BASE_LR == 0.1


def test_overrides_beat_the_file_and_are_typed():
    cfg = load_config(
        CONFIGS / "Kinetics/vov3d/vov3d_M.yaml",
        [
            "DATA.TRAIN_JITTER_SCALES", "[128, 160]",  # list
            "DATA.TRAIN_CROP_SIZE", "112",
            "TRAIN.ENABLE", "False",  # bool, Python spelling
            "TEST.ENABLE", "false",  # bool, YAML spelling
            "SOLVER.BASE_LR", "1",  # an integer for a float key
            "SOLVER.WARMUP_START_LR", "1e-3",
            "OUTPUT_DIR", "/tmp/run 1",  # a path with a space
            "TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN", "['module.']",  # list for a tuple key
            "NUM_GPUS", 1,  # values from Python need not be strings
        ],
    )
    assert cfg.DATA.TRAIN_JITTER_SCALES == [128, 160] and cfg.DATA.TRAIN_CROP_SIZE == 112
    assert cfg.TRAIN.ENABLE is False and cfg.TEST.ENABLE is False
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.SOLVER.WARMUP_START_LR == 1e-3
    assert cfg.OUTPUT_DIR == "/tmp/run 1"
    assert cfg.TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN == ("module.",)
    assert cfg.NUM_GPUS == 1
    assert cfg.SOLVER.MAX_EPOCH == 256  # untouched keys keep the file's values


def test_yaml_spellings_of_the_original_files_are_read_as_the_original_did(tmp_path):
    """PyYAML reads 5e-5 as a string; yacs (and vov3d) turn it into a float. 'True' is a bool."""
    path = tmp_path / "cfg.yaml"
    path.write_text("SOLVER:\n  WEIGHT_DECAY: 5e-5\n  WARMUP_EPOCHS: 35\nTRAIN:\n  CHECKPOINT_FILE_PATH:\nOUTPUT_DIR: 'output/x'\n")
    cfg = load_config(path)
    assert cfg.SOLVER.WEIGHT_DECAY == 5e-5 and cfg.SOLVER.WARMUP_EPOCHS == 35.0
    assert cfg.TRAIN.CHECKPOINT_FILE_PATH == "" and cfg.OUTPUT_DIR == "output/x"


def test_base_files_are_merged_first_and_errors_name_the_file_they_are_in(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "common.yaml").write_text("SOLVER:\n  BASE_LR: 0.2\n  MAX_EPOCH: 10\nTRAIN:\n  BATCH_SIZE: 32\n")
    child = tmp_path / "child.yaml"
    child.write_text("_BASE_: base/common.yaml\nSOLVER:\n  MAX_EPOCH: 20\n")
    cfg = load_config(child, ["TRAIN.BATCH_SIZE", "16"])
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_EPOCH, cfg.TRAIN.BATCH_SIZE) == (0.2, 20, 16)
    (tmp_path / "base" / "common.yaml").write_text("SOLVER:\n  BASE_LR: 0.2\n  MAX_EPOC: 10\n")
    with pytest.raises(ConfigError) as info:
        load_config(child)
    assert info.value.file == str(tmp_path / "base" / "common.yaml") and info.value.line == 3
    child.write_text("_BASE_: missing.yaml\n")
    with pytest.raises(ConfigError, match="missing.yaml does not exist"):
        load_config(child)
    child.write_text("_BASE_: child.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(child)


def test_ignored_original_keys_are_logged(tmp_path, caplog):
    path = tmp_path / "cfg.yaml"
    path.write_text("MULTIGRID:\n  SHORT_CYCLE: False\nSLOWFAST:\n  ALPHA: 8\n")
    with caplog.at_level(logging.WARNING, logger="vov3d"):
        load_config(path)
    assert "MULTIGRID, SLOWFAST" in caplog.text


def test_dump_config_round_trips_and_writes_atomically(tmp_path):
    cfg = load_config(CONFIGS / "SSv2/vov3d/finetune/vov3d_M_F32_finetune.yaml",
                      ["TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN", "('module.',)", "SOLVER.LABEL_SMOOTHING", "0.1"])
    out = tmp_path / "run" / "config.yaml"
    out.parent.mkdir()
    (out.parent / "config.yaml").write_text("old")
    assert dump_config(cfg, out) == out
    assert sorted(p.name for p in out.parent.iterdir()) == ["config.yaml"]  # no temporary file left
    again = load_config(out)
    assert again == cfg
    assert yaml.safe_load(out.read_text())["SOLVER"]["LRS"] == [1, 0.1, 0.01, 0.001, 0.0001, 0.00001]
    # The dump holds every key, so that a run can be repeated from it alone.
    flat = yaml.safe_load(out.read_text())
    assert all(_has(flat, key) for key in all_keys())


def _has(tree: dict, key: str) -> bool:
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
