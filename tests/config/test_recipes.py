"""Every recipe under configs/ loads and builds its model; the 20 original recipes hold the original's values (spec §7.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vov3d.config import builders, load_config
from vov3d.data import KINETICS_PARAMS, SOMETHING_PARAMS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ALL = sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*.yaml"))

# Parameters of the registered models with 400 / 174 classes (spec §0, §2.4, §3.3).
PARAMS = {
    ("vov3d_m", 400): 3_800_448,
    ("vov3d_m_v2", 400): 3_667_360,
    ("vov3d_m_v2", 174): 3_204_286,
    ("vov3d_l", 400): 6_297_168,
    ("vov3d_l", 174): 5_834_094,
    ("x3d_m", 400): 3_794_322,
    ("x3d_m", 174): 3_331_248,
    ("x3d_l", 400): 6_153_432,
    ("x3d_l", 174): 5_690_358,
}

# Spec §7.3, one row a recipe: model, classes, frames, test crop, INV_UNIFORM_SAMPLE, RANDOM_FLIP,
# REVERSE_INPUT_CHANNEL, batch train/test, LR policy, base LR, epochs, warm-up (epochs, start LR),
# sync BN, views (clips, crops), eval/checkpoint period, BASE_LR_SCALE_NUM_SHARDS, loader workers.
T, F = True, False
ORIGINAL = {
    "Kinetics/vov3d/vov3d_M.yaml": ("vov3d_m", 400, 16, 256, F, T, F, 128, 64, "cos", 0.1, 256, 35, 0.01, F, (10, 3), 10, 1, T, 8),
    "Kinetics/vov3d/vov3d_L.yaml": ("vov3d_l", 400, 16, 256, F, T, F, 128, 64, "cos", 0.1, 256, 35, 0.01, F, (10, 3), 10, 1, T, 8),
    "Kinetics/x3d/X3D_M_256e.yaml": ("x3d_m", 400, 16, 256, F, T, F, 128, 64, "cos", 0.1, 256, 35, 0.01, F, (10, 3), 10, 10, T, 8),
    "Kinetics/x3d/X3D_L_256scale_256e.yaml": ("x3d_l", 400, 16, 256, F, T, F, 64, 64, "cos", 0.05, 256, 35, 0.01, F, (10, 3), 10, 10, T, 8),
    "SSv1/vov3d/vov3d_M_F16.yaml": ("vov3d_m", 174, 16, 256, T, F, T, 64, 16, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 20, T, 4),
    "SSv1/vov3d/vov3d_M_F32.yaml": ("vov3d_m", 174, 32, 256, T, F, T, 64, 64, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 20, T, 8),
    "SSv1/vov3d/vov3d_L_F16.yaml": ("vov3d_l", 174, 16, 256, T, F, T, 64, 64, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 20, T, 8),
    "SSv1/vov3d/vov3d_L_F32.yaml": ("vov3d_l", 174, 32, 256, T, F, T, 64, 64, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 20, T, 4),
    "SSv1/vov3d/finetune/vov3d_M_F32_finetune.yaml": ("vov3d_m", 174, 32, 256, T, F, T, 64, 16, "steps", 0.05, 50, 0.19, 1e-4, T, (2, 3), 2, 10, T, 4),
    "SSv1/vov3d/finetune/vov3d_L_F32_finetune.yaml": ("vov3d_l", 174, 32, 256, T, F, T, 64, 64, "steps", 0.05, 50, 0.19, 1e-4, T, (2, 3), 2, 10, T, 4),
    "SSv1/x3d/x3d_M.yaml": ("x3d_m", 174, 16, 224, T, F, T, 64, 64, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 10, F, 8),
    "SSv1/x3d/x3d_L.yaml": ("x3d_l", 174, 16, 224, F, T, F, 64, 64, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 2, T, 8),
    "SSv2/vov3d/vov3d_M_F16.yaml": ("vov3d_m", 174, 16, 256, T, F, T, 64, 16, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 20, T, 4),
    "SSv2/vov3d/vov3d_M_F32.yaml": ("vov3d_m", 174, 32, 256, T, F, T, 64, 16, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 20, T, 4),
    "SSv2/vov3d/vov3d_L_F16.yaml": ("vov3d_l", 174, 16, 256, T, F, T, 64, 64, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 20, T, 8),
    "SSv2/vov3d/vov3d_L_F32.yaml": ("vov3d_l", 174, 32, 256, T, F, T, 64, 64, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 20, T, 8),
    "SSv2/vov3d/finetune/vov3d_M_F32_finetune.yaml": ("vov3d_m", 174, 32, 256, T, F, T, 64, 16, "steps", 0.05, 50, 0.19, 1e-4, T, (2, 3), 2, 20, T, 4),
    "SSv2/vov3d/finetune/vov3d_L_F32_finetune.yaml": ("vov3d_l", 174, 32, 256, T, F, T, 64, 64, "steps", 0.05, 50, 0.19, 1e-4, T, (2, 3), 2, 20, T, 8),
    "SSv2/x3d/x3d_M.yaml": ("x3d_m", 174, 16, 224, T, F, T, 64, 64, "cos", 0.1, 100, 1, 0.01, F, (1, 1), 2, 10, F, 4),
    "SSv2/x3d/x3d_L.yaml": ("x3d_l", 174, 16, 224, F, T, F, 64, 64, "cos", 0.1, 100, 1, 0.01, F, (2, 3), 2, 2, T, 8),
}
V2 = {  # the April 2021 VoV3D-M recipes and the Dec 2020 ones they differ from only in the model
    "Kinetics/vov3d/vov3d_M_v2.yaml": "Kinetics/vov3d/vov3d_M.yaml",
    "SSv1/vov3d/vov3d_M_v2_F16.yaml": "SSv1/vov3d/vov3d_M_F16.yaml",
    "SSv1/vov3d/vov3d_M_v2_F32.yaml": "SSv1/vov3d/vov3d_M_F32.yaml",
    "SSv1/vov3d/finetune/vov3d_M_v2_F32_finetune.yaml": "SSv1/vov3d/finetune/vov3d_M_F32_finetune.yaml",
    "SSv2/vov3d/vov3d_M_v2_F16.yaml": "SSv2/vov3d/vov3d_M_F16.yaml",
    "SSv2/vov3d/vov3d_M_v2_F32.yaml": "SSv2/vov3d/vov3d_M_F32.yaml",
    "SSv2/vov3d/finetune/vov3d_M_v2_F32_finetune.yaml": "SSv2/vov3d/finetune/vov3d_M_F32_finetune.yaml",
}
SYNTHETIC = {
    "Synthetic/vov3d_M.yaml": "vov3d_m",
    "Synthetic/x3d_M.yaml": "x3d_m",
    "Synthetic/tiny.yaml": "vov3d_m",
    "Synthetic/demo_vov3d_M.yaml": "vov3d_m",  # the main job (scripts/run.sh)
}


def test_the_tree_holds_the_original_recipes_the_v2_ones_and_synthetic():
    assert set(ALL) == set(ORIGINAL) | set(V2) | set(SYNTHETIC)


@pytest.mark.parametrize("name", ALL)
def test_every_config_loads_and_builds_its_model(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.is_frozen()
    expected = ORIGINAL[name][0] if name in ORIGINAL else "vov3d_m_v2" if name in V2 else SYNTHETIC[name]
    assert builders.model_name(cfg) == expected
    model = builders.build_model(cfg)
    assert model.head.projection.out_features == cfg.MODEL.NUM_CLASSES
    count = sum(p.numel() for p in model.parameters())
    key = (expected, cfg.MODEL.NUM_CLASSES)
    if key in PARAMS:
        assert count == PARAMS[key]
    # Dec 2020 VoV3D-M with 174 classes: the 400-class count less 226 rows of the 2048-wide classifier.
    if key == ("vov3d_m", 174):
        assert count == PARAMS[("vov3d_m", 400)] - 226 * 2049


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_original_recipes_hold_the_original_values(name):
    (model, classes, frames, test_crop, inv, flip, rev, bs_train, bs_test, policy, base_lr, epochs,
     warmup, warmup_lr, sync, views, eval_period, ckpt_period, scale_shards, workers) = ORIGINAL[name]
    cfg = load_config(CONFIGS / name)
    assert cfg.MODEL.NUM_CLASSES == classes
    d = cfg.DATA
    assert (d.NUM_FRAMES, d.TEST_CROP_SIZE, d.TRAIN_CROP_SIZE, list(d.TRAIN_JITTER_SCALES)) == (frames, test_crop, 224, [256, 320])
    assert (d.INV_UNIFORM_SAMPLE, d.RANDOM_FLIP, d.REVERSE_INPUT_CHANNEL) == (inv, flip, rev)
    assert (cfg.TRAIN.BATCH_SIZE, cfg.TEST.BATCH_SIZE) == (bs_train, bs_test)
    s = cfg.SOLVER
    assert s.LR_POLICY == {"cos": "cosine", "steps": "steps_with_relative_lrs"}[policy]
    assert (s.BASE_LR, s.MAX_EPOCH, s.WARMUP_EPOCHS, s.WARMUP_START_LR) == (base_lr, epochs, warmup, warmup_lr)
    assert (s.MOMENTUM, s.WEIGHT_DECAY, s.NESTEROV, s.OPTIMIZING_METHOD) == (0.9, 5e-5, True, "sgd")
    if policy == "steps":
        assert list(s.STEPS) == [0, 35, 45] and list(s.LRS)[:3] == [1, 0.1, 0.01]
    assert cfg.BN.NORM_TYPE == ("sync_batchnorm" if sync else "batchnorm")
    assert cfg.BN.NUM_SYNC_DEVICES == (4 if sync else 1)
    assert (cfg.BN.USE_PRECISE_STATS, cfg.BN.NUM_BATCHES_PRECISE, cfg.BN.WEIGHT_DECAY) == (True, 200, 0.0)
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS) == views
    assert (cfg.TRAIN.EVAL_PERIOD, cfg.TRAIN.CHECKPOINT_PERIOD) == (eval_period, ckpt_period)
    assert s.BASE_LR_SCALE_NUM_SHARDS == scale_shards
    assert cfg.DATA_LOADER.NUM_WORKERS == workers
    assert (cfg.NUM_GPUS, cfg.RNG_SEED, cfg.TRAIN.AUTO_RESUME, cfg.MODEL.DROPOUT_RATE) == (8, 0, True, 0.5)
    assert cfg.RESNET.ZERO_INIT_FINAL_BN is True
    assert cfg.TRAIN.DATASET == cfg.TEST.DATASET == {"Kinetics": "kinetics", "SSv1": "ssv1", "SSv2": "ssv2"}[name.split("/")[0]]
    if policy == "steps":
        assert cfg.TRAIN.CHECKPOINT_FILE_PATH.startswith("output/pretrained/vov3d_")
    # Spec §7.3 notes: TensorBoard on except in the K400 X3D and SS x3d_L recipes; SSv1 x3d_L writes to SSv2's folder.
    assert cfg.TENSORBOARD.ENABLE == (not (name.startswith("Kinetics/x3d") or name.endswith("x3d_L.yaml")))
    if name == "SSv1/x3d/x3d_L.yaml":
        assert cfg.OUTPUT_DIR == "output/SSv2/x3d/x3d_L"
    # Data paths are placeholders, never the authors' home directories.
    assert not cfg.DATA.PATH_TO_DATA_DIR.startswith("/") and not cfg.DATA.PATH_PREFIX.startswith("/")


@pytest.mark.parametrize("v2, v1", sorted(V2.items()))
def test_v2_recipes_differ_from_the_dec_2020_ones_only_in_the_model(v2, v1):
    a, b = load_config(CONFIGS / v2), load_config(CONFIGS / v1)
    assert (a.VOV3D.DEPTH, a.VOV3D.NUM_CONV, a.VOV3D.INNER_CH) == (31, 5, 40)
    assert (b.VOV3D.DEPTH, b.VOV3D.NUM_CONV, b.VOV3D.INNER_CH) == (31, 4, 48)
    assert a.OUTPUT_DIR != b.OUTPUT_DIR  # AUTO_RESUME never picks up the other definition's checkpoints
    for cfg in (a, b):
        cfg.defrost()
        cfg.VOV3D.NUM_CONV, cfg.VOV3D.INNER_CH, cfg.OUTPUT_DIR, cfg.TRAIN.CHECKPOINT_FILE_PATH = 0, 0, "", ""
    assert a == b


def test_clip_params_of_the_recipes_are_the_datasets_originals():
    """The data package's constants (spec §7.3) are what the Kinetics and SS VoV3D recipes describe."""
    assert builders.clip_params(load_config(CONFIGS / "Kinetics/vov3d/vov3d_M.yaml")) == KINETICS_PARAMS
    assert builders.clip_params(load_config(CONFIGS / "SSv2/vov3d/vov3d_M_F16.yaml")) == SOMETHING_PARAMS
    ss_x3d_l = builders.clip_params(load_config(CONFIGS / "SSv1/x3d/x3d_L.yaml"))  # the §11.14 oddities kept
    assert (ss_x3d_l.random_flip, ss_x3d_l.reverse_input_channel, ss_x3d_l.inverse_uniform_sample) == (True, False, False)
    assert ss_x3d_l.test_crop_size == 224


# The built-in dataset each synthetic recipe reads: (folder, frames a video, short side of its frames).
SYNTHETIC_DATA = {
    "full": ("data/synth/kinetics", 91, 120),  # vov3d data synth --out data/synth
    "easy": ("data/synth_easy/kinetics", 16, 32),  # scripts/run.sh: --level easy
}


def test_synthetic_recipes_run_on_a_cpu_without_flips():
    for name in SYNTHETIC:
        cfg = load_config(CONFIGS / name)
        folder, frames, short_side = SYNTHETIC_DATA["easy" if "demo" in name else "full"]
        assert cfg.NUM_GPUS == 0 and cfg.BN.NORM_TYPE == "batchnorm" and cfg.MODEL.NUM_CLASSES == 12
        assert cfg.DATA.RANDOM_FLIP is False  # a flip swaps classes 0/1 and 6/7 of the synthetic data
        assert cfg.DATA.NUM_FRAMES * cfg.DATA.SAMPLING_RATE <= frames  # clips fit in the videos
        assert cfg.DATA.TRAIN_JITTER_SCALES[0] <= short_side  # not upscaled beyond need
        assert cfg.DATA.PATH_TO_DATA_DIR == folder
