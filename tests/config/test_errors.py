"""A bad config file, key or value: a ConfigError naming the file and line, the key, what was expected (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vov3d.config import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(error: ConfigError) -> dict[str, str]:
    return {p.key: str(p) for p in error.problems}


def test_unknown_key_in_a_file_names_file_line_and_the_nearest_keys(tmp_path):
    path = write(tmp_path, "TRAIN:\n  ENABLE: True\n  BATCH_SIZ: 16\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.key == "TRAIN.BATCH_SIZ"
    assert (error.file, error.line) == (str(path), 3)
    assert error.suggestions[0] == "TRAIN.BATCH_SIZE"
    assert f"{path}:3" in str(error) and "unknown key" in str(error) and "TRAIN.BATCH_SIZE" in str(error)


def test_unknown_key_in_the_wrong_section_suggests_the_right_one(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(None, ["TRAIN.NUM_SPATIAL_CROPS", "1"])
    assert info.value.suggestions[0] == "TEST.NUM_SPATIAL_CROPS"
    assert "command line" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(None, ["SOLVER.BASE_RL", "0.1"])
    assert "SOLVER.BASE_LR" in info.value.suggestions
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "SOLVERS:\n  BASE_LR: 0.1\n"))
    assert info.value.key == "SOLVERS" and info.value.line == 1


@pytest.mark.parametrize(
    "text, key, line, expected",
    [
        ("TRAIN:\n  BATCH_SIZE: sixteen\n", "TRAIN.BATCH_SIZE", 2, "expected an integer, got 'sixteen'"),
        ("TRAIN:\n  BATCH_SIZE: 0\n", "TRAIN.BATCH_SIZE", 2, "expected an integer >= 1, got 0"),
        ("SOLVER:\n  BASE_LR: -0.1\n", "SOLVER.BASE_LR", 2, "expected a number > 0, got -0.1"),
        ("SOLVER:\n  BASE_LR: [0.1]\n", "SOLVER.BASE_LR", 2, "expected a number, got [0.1]"),
        ("TRAIN:\n  ENABLE: maybe\n", "TRAIN.ENABLE", 2, "expected true or false, got 'maybe'"),
        ("DATA:\n  MEAN: 0.45\n", "DATA.MEAN", 2, "expected a list like [0.45, 0.45, 0.45], got 0.45"),
        ("DATA:\n  MEAN: [0.45, 0.45]\n", "DATA.MEAN", 2, "expected a list of 3 numbers"),
        ("MODEL:\n  DROPOUT_RATE: 1.0\n", "MODEL.DROPOUT_RATE", 2, "expected a number >= 0 and < 1, got 1.0"),
        ("TEST:\n  NUM_SPATIAL_CROPS: 2\n", "TEST.NUM_SPATIAL_CROPS", 2, "expected one of 1, 3; got 2"),
        ("SOLVER:\n  LR_POLICY: cosin\n", "SOLVER.LR_POLICY", 2, "expected one of cosine, steps_with_relative_lrs; got 'cosin' (did you mean 'cosine'?)"),
        ("TRAIN:\n  DATASET: kinetic\n", "TRAIN.DATASET", 2, "expected one of kinetics, ssv1, ssv2; got 'kinetic'"),
        ("BN:\n  NORM_TYPE: sub_batchnorm\n", "BN.NORM_TYPE", 2, "expected one of batchnorm, sync_batchnorm"),
        ("SOLVER:\n  OPTIMIZING_METHOD: adam\n", "SOLVER.OPTIMIZING_METHOD", 2, "expected one of sgd, adamw"),
        ("TRAIN:\n  MIXED_PRECISION: fp8\n", "TRAIN.MIXED_PRECISION", 2, "expected one of auto, off, bf16, fp16"),
        ("DATA:\n  TRAIN_JITTER_SCALES: [320, 256]\n", "DATA.TRAIN_JITTER_SCALES", 2, "min <= max"),
        ("TRAIN:\n  CHECKPOINT_TYPE: caffe2\n", "TRAIN.CHECKPOINT_TYPE", 2, "caffe2 checkpoints are not supported"),
        ("DATA:\n  INPUT_CHANNEL_NUM: [3, 3]\n", "DATA.INPUT_CHANNEL_NUM", 2, "one RGB pathway"),
        ("TRAIN:\n  ENABLE: True\n", None, None, None),  # control: a good file loads
    ],
)
def test_a_bad_value_names_the_key_and_what_was_expected(tmp_path, text, key, line, expected):
    path = write(tmp_path, text)
    if key is None:
        load_config(path)
        return
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = problems(info.value)
    assert key in found, str(info.value)
    assert expected in found[key]
    assert f"{path}:{line}" in found[key]
    assert isinstance(info.value, ValueError)


def test_a_bad_override_names_the_command_line():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["SOLVER.MAX_EPOCH", "ten"])
    assert str(info.value) == "bad config: command line: SOLVER.MAX_EPOCH: expected an integer, got 'ten'"


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    path = write(tmp_path, "TRAIN:\n  BATCH_SIZ: 16\n  DATASET: kinetic\nSOLVER:\n  BASE_LR: fast\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert set(problems(info.value)) == {"TRAIN.BATCH_SIZ", "TRAIN.DATASET", "SOLVER.BASE_LR"}
    assert "3 problems" in str(info.value)


def test_inconsistent_values_name_all_their_keys(tmp_path):
    path = write(tmp_path, "SOLVER:\n  LR_POLICY: steps_with_relative_lrs\n  STEPS: [0, 35, 45]\n  LRS: [1, 0.1]\n  MAX_EPOCH: 50\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.keys == ("SOLVER.LRS", "SOLVER.STEPS")
    assert "one relative LR for each of the 3 steps, got 2" in str(problem)
    assert f"{path}:4" in str(problem) and f"{path}:3" in str(problem)
    with pytest.raises(ConfigError, match="starting with 0"):
        load_config(None, ["SOLVER.LR_POLICY", "steps_with_relative_lrs", "SOLVER.STEPS", "[10, 20]", "SOLVER.LRS", "[1, 0.1]"])
    with pytest.raises(ConfigError, match="must fit in the smallest jitter scale"):
        load_config(None, ["DATA.TRAIN_CROP_SIZE", "300"])
    with pytest.raises(ConfigError, match="SHARD_ID must be < NUM_SHARDS"):
        load_config(None, ["SHARD_ID", "1"])


def test_a_model_that_matches_no_registered_one_names_its_keys(tmp_path):
    path = write(tmp_path, "VOV3D:\n  DEPTH: 31\n  NUM_CONV: 5\n  INNER_CH: 48\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.keys == ("VOV3D.DEPTH", "VOV3D.NUM_CONV", "VOV3D.INNER_CH")
    assert "(31, 5, 48) matches no VoV3D model" in str(problem) and "31, 5, 40 (vov3d_m_v2)" in str(problem)
    with pytest.raises(ConfigError, match="X3D-M or"):
        load_config(None, ["MODEL.MODEL_NAME", "X3D", "MODEL.ARCH", "x3d", "RESNET.TRANS_FUNC", "x3d_transform",
                           "X3D.DEPTH_FACTOR", "3.0"])
    with pytest.raises(ConfigError, match="needs ARCH x3d"):
        load_config(None, ["MODEL.MODEL_NAME", "X3D"])
    with pytest.raises(ConfigError, match="did you mean 'VoV3D'"):
        load_config(None, ["MODEL.MODEL_NAME", "vov3d"])


def test_sync_bn_groups_that_cannot_divide_the_gpus_are_an_error():
    """Spec §11.15: the SS finetune recipes sync BN over 4 GPUs; on one GPU that is a clear error."""
    finetune = CONFIGS / "SSv2/vov3d/finetune/vov3d_M_F32_finetune.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(finetune, ["NUM_GPUS", "1", "TRAIN.BATCH_SIZE", "8", "TEST.BATCH_SIZE", "8"])
    text = str(info.value)
    assert "BN.NUM_SYNC_DEVICES" in text and "BN.NORM_TYPE batchnorm" in text and "NUM_GPUS 1" in text
    assert f"{finetune}:" in text and "command line" in text
    cfg = load_config(finetune, ["NUM_GPUS", "1", "BN.NORM_TYPE", "batchnorm"])  # the documented way out
    assert cfg.BN.NORM_TYPE == "batchnorm"


def test_a_batch_that_does_not_divide_between_the_gpus_is_an_error():
    with pytest.raises(ConfigError, match="must divide evenly between the NUM_GPUS 3 processes"):
        load_config(CONFIGS / "Kinetics/vov3d/vov3d_M.yaml", ["NUM_GPUS", "3"])


def test_a_missing_file_names_its_path(tmp_path):
    with pytest.raises(ConfigError, match=f"config file {tmp_path / 'missing.yaml'} does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_a_file_that_is_not_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "TRAIN:\n  BATCH_SIZE: 4\n   ENABLE: True\n")
    with pytest.raises(ConfigError, match=f"{path}:3:[0-9]+: not valid YAML"):
        load_config(path)
    path = write(tmp_path, "TRAIN:\n  BATCH_SIZE: [4\n", "unclosed.yaml")
    with pytest.raises(ConfigError, match=f"{path}:[23]:[0-9]+: not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- TRAIN\n- TEST\n", "list.yaml"))
    with pytest.raises(ConfigError, match="is a section: expected a mapping of its keys"):
        load_config(write(tmp_path, "TRAIN: 4\n", "scalar.yaml"))


def test_a_key_given_twice_names_both_lines(tmp_path):
    path = write(tmp_path, "SOLVER:\n  BASE_LR: 0.1\n  MAX_EPOCH: 10\n  BASE_LR: 0.2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 4 and "also on line 2" in str(info.value) and info.value.key == "SOLVER.BASE_LR"


def test_overrides_must_come_in_pairs_and_name_keys_not_sections():
    with pytest.raises(ConfigError, match="'TRAIN.BATCH_SIZE' has no value"):
        load_config(None, ["TRAIN.BATCH_SIZE"])
    with pytest.raises(ConfigError, match="is a section, not a key") as info:
        load_config(None, ["SOLVER", "0.1"])
    assert "SOLVER.BASE_LR" in info.value.suggestions or any(s.startswith("SOLVER.") for s in info.value.suggestions)


def test_switching_on_an_original_feature_vov3d_lacks_is_an_error(tmp_path):
    """AVA/DEMO/DETECTION/MULTIGRID keys load (ignored) while the feature stays off; switching it on is an error."""
    path = write(tmp_path, "AVA:\n  FRAME_DIR: /data/ava\nDEMO:\n  ENABLE: False\nTENSORBOARD:\n  ENABLE: True\n"
                           "  MODEL_VIS:\n    ENABLE: False\n")
    cfg = load_config(path)
    assert cfg.TENSORBOARD.ENABLE is True and "AVA" not in cfg and "DEMO" not in cfg
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "DEMO:\n  ENABLE: True\n", "demo.yaml"))
    assert info.value.key == "DEMO.ENABLE" and info.value.line == 2 and "not supported" in str(info.value)
    with pytest.raises(ConfigError, match="TENSORBOARD.MODEL_VIS.ENABLE"):
        load_config(None, ["TENSORBOARD.MODEL_VIS.ENABLE", "True"])


def test_keys_vov3d_cannot_honour_must_keep_their_values():
    for key, value, message in [
        ("NONLOCAL.LOCATION", "[[[1]], [[]], [[]], [[]]]", "non-local blocks are not supported"),
        ("TRAIN.CHECKPOINT_INFLATE", "True", "inflation is not supported"),
        ("VOV3D.INNER_MULTIPLIER", "[1, 2, 4, 4]", "fixed by the architecture"),
        ("MODEL.DROPCONNECT_RATE", "0.1", "drop-connect is not supported"),
        ("VOV3D.TRANS_FUNC", "OSA_transform", "t_osa_2plus1_transform"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, [key, value])
