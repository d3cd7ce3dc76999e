"""The original repository's YAML files load as they are, and resolve to our recipes' values (spec §7).

The two files below are the original's Kinetics VoV3D-M (Dec 2020) and X3D-M recipes with every key
and value as published (the authors' data path included; comments left out).
"""

from __future__ import annotations

from pathlib import Path

from vov3d.config import builders, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

ORIGINAL_K400_VOV3D_M = """\
TRAIN:
  ENABLE: True
  DATASET: kinetics
  BATCH_SIZE: 128
  EVAL_PERIOD: 10
  CHECKPOINT_PERIOD: 1
  AUTO_RESUME: True
DATA:
  NUM_FRAMES: 16
  SAMPLING_RATE: 5
  TRAIN_JITTER_SCALES: [256, 320]
  TRAIN_CROP_SIZE: 224
  TEST_CROP_SIZE: 256
  INPUT_CHANNEL_NUM: [3]
  PATH_TO_DATA_DIR: /home/lsrock1/data/kinetics/
VOV3D:
  DEPTH: 31
  TRANS_FUNC: t_osa_2plus1_transform
  NUM_CONV: 4
  INNER_CH: 48
  TEMPORAL_DILATIONS: [[1], [1], [1], [1]]
RESNET:
  ZERO_INIT_FINAL_BN: True
  WIDTH_PER_GROUP: 64
  NUM_GROUPS: 1
  STRIDE_1X1: False
  NUM_BLOCK_TEMP_KERNEL: [[1],[1],[1],[1]]
NONLOCAL:
  LOCATION: [[[]], [[]], [[]], [[]]]
  GROUP: [[1], [1], [1], [1]]
  INSTANTIATION: dot_product
BN:
  USE_PRECISE_STATS: True
  NUM_BATCHES_PRECISE: 200
  WEIGHT_DECAY: 0.0
SOLVER:
  BASE_LR: 0.1
  LR_POLICY: cosine
  BASE_LR_SCALE_NUM_SHARDS: True
  MAX_EPOCH: 256
  MOMENTUM: 0.9
  WEIGHT_DECAY: 5e-5
  WARMUP_EPOCHS: 35.0
  WARMUP_START_LR: 0.01
  OPTIMIZING_METHOD: sgd
MODEL:
  NUM_CLASSES: 400
  ARCH: vov3d
  MODEL_NAME: VoV3D
  LOSS_FUNC: cross_entropy
  DROPOUT_RATE: 0.5
TEST:
  ENABLE: True
  DATASET: kinetics
  BATCH_SIZE: 64
DATA_LOADER:
  NUM_WORKERS: 8
  PIN_MEMORY: True
NUM_GPUS: 8
NUM_SHARDS: 1
RNG_SEED: 0
LOG_MODEL_INFO: True
TENSORBOARD:
  ENABLE: True
OUTPUT_DIR: output/K400/vov3d/vov3d_M
"""

ORIGINAL_K400_X3D_M = """\
TRAIN:
  DATASET: kinetics
  BATCH_SIZE: 128
  EVAL_PERIOD: 10
  CHECKPOINT_PERIOD: 10
  AUTO_RESUME: True
X3D:
  WIDTH_FACTOR: 2.0
  DEPTH_FACTOR: 2.2
  BOTTLENECK_FACTOR: 2.25
  DIM_C5: 2048
  DIM_C1: 12
TEST:
  ENABLE: True
  DATASET: kinetics
  BATCH_SIZE: 64
  NUM_SPATIAL_CROPS: 3
DATA:
  NUM_FRAMES: 16
  SAMPLING_RATE: 5
  TRAIN_JITTER_SCALES: [256, 320]
  TRAIN_CROP_SIZE: 224
  TEST_CROP_SIZE: 256
  INPUT_CHANNEL_NUM: [3]
  DECODING_BACKEND: torchvision
RESNET:
  ZERO_INIT_FINAL_BN: True
  TRANS_FUNC: x3d_transform
  STRIDE_1X1: False
BN:
  USE_PRECISE_STATS: True
  NUM_BATCHES_PRECISE: 200
  WEIGHT_DECAY: 0.0
SOLVER:
  BASE_LR: 0.1
  BASE_LR_SCALE_NUM_SHARDS: True
  LR_POLICY: cosine
  MAX_EPOCH: 256
  WEIGHT_DECAY: 5e-5
  WARMUP_EPOCHS: 35.0
  WARMUP_START_LR: 0.01
  OPTIMIZING_METHOD: sgd
MODEL:
  NUM_CLASSES: 400
  ARCH: x3d
  MODEL_NAME: X3D
  LOSS_FUNC: cross_entropy
  DROPOUT_RATE: 0.5
DATA_LOADER:
  NUM_WORKERS: 8
  PIN_MEMORY: True
NUM_GPUS: 8
RNG_SEED: 0
OUTPUT_DIR: ."""


def _load_both(tmp_path: Path, text: str, ours: str):
    path = tmp_path / "original.yaml"
    path.write_text(text)
    original, recipe = load_config(path), load_config(CONFIGS / ours)
    for cfg in (original, recipe):
        cfg.defrost()
        cfg.DATA.PATH_TO_DATA_DIR = ""  # the only intended difference: a placeholder, not a home directory
    return original, recipe


def test_the_original_k400_vov3d_m_file_loads_and_equals_our_recipe(tmp_path):
    original, recipe = _load_both(tmp_path, ORIGINAL_K400_VOV3D_M, "Kinetics/vov3d/vov3d_M.yaml")
    assert builders.model_name(original) == "vov3d_m"
    assert original == recipe


def test_the_original_k400_x3d_m_file_loads_and_equals_our_recipe(tmp_path):
    original, recipe = _load_both(tmp_path, ORIGINAL_K400_X3D_M, "Kinetics/x3d/X3D_M_256e.yaml")
    assert builders.model_name(original) == "x3d_m"
    assert original == recipe


def test_the_april_2021_original_builds_vov3d_m_v2(tmp_path):
    path = tmp_path / "original.yaml"
    path.write_text(ORIGINAL_K400_VOV3D_M.replace("NUM_CONV: 4", "NUM_CONV: 5").replace("INNER_CH: 48", "INNER_CH: 40"))
    cfg = load_config(path)
    assert builders.model_name(cfg) == "vov3d_m_v2"
    assert builders.build_model(cfg).head.projection.out_features == 400
