"""``run_net.main`` and ``vov3d run/train/test``: arguments and one clear message (exit 2) for a user's mistake."""

from __future__ import annotations

import shutil

import pytest
import torch

from vov3d.checkpoint import save_checkpoint
from vov3d.engine import commands, run_net


def _fails(capsys, argv, *needles, status=2, fn=run_net.main):
    code = fn(argv)
    err = capsys.readouterr().err
    assert code == status, err
    assert "Traceback" not in err
    message = err[err.index("error: "):] if "error: " in err else ""
    assert message and len(message.strip().splitlines()) <= 12, err  # log lines may come before it
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_overrides_positional_and_after_opts_and_shard_flags():
    parser = run_net.build_parser()
    args = parser.parse_args(["--cfg", "a.yaml", "A.B", "1", "--opts", "C.D", "2", "--num_shards", "1"])
    # argparse leaves everything after the first KEY in the remainder; --opts is dropped from it
    assert run_net.collect_opts(args)[:4] == ["A.B", "1", "C.D", "2"]
    args = parser.parse_args(["--cfg", "a.yaml", "--shard_id", "0", "--num_shards", "1", "--init_method",
                              "tcp://localhost:9999", "--opts", "TRAIN.ENABLE", "False"])
    assert run_net.collect_opts(args) == ["TRAIN.ENABLE", "False", "NUM_SHARDS", "1", "SHARD_ID", "0"]


def test_bad_key_names_the_key_and_the_nearest_valid_one(tiny, tmp_path, capsys):
    _fails(capsys, ["--cfg", str(tiny.yaml), *tiny.opts(tmp_path), "SOLVER.MAX_EPOCHS", "3"],
           "SOLVER.MAX_EPOCHS", "SOLVER.MAX_EPOCH")


def test_bad_value_names_the_key(tiny, tmp_path, capsys):
    _fails(capsys, ["--cfg", str(tiny.yaml), *tiny.opts(tmp_path), "SOLVER.MAX_EPOCH", "many"], "SOLVER.MAX_EPOCH")


def test_odd_number_of_overrides(tiny, capsys):
    _fails(capsys, ["--cfg", str(tiny.yaml), "NUM_GPUS"], "NUM_GPUS")


def test_missing_config_file(tmp_path, capsys):
    _fails(capsys, ["--cfg", str(tmp_path / "nope.yaml")], "nope.yaml")


def test_missing_data_folder(tiny, tmp_path, capsys):
    missing = tmp_path / "no_such_folder"
    _fails(capsys, ["--cfg", str(tiny.yaml), "DATA.PATH_TO_DATA_DIR", str(missing), "OUTPUT_DIR", str(tmp_path / "o")],
           str(missing))


def test_empty_split(tiny, tmp_path, capsys):
    data = tmp_path / "kinetics"
    shutil.copytree(tiny.data("kinetics"), data)
    (data / "train.csv").write_text("")
    _fails(capsys, ["--cfg", str(tiny.yaml), "DATA.PATH_TO_DATA_DIR", str(data), "OUTPUT_DIR", str(tmp_path / "o")],
           "train")


def test_checkpoint_of_another_model(tiny, tmp_path, capsys):
    from vov3d.models import create_model

    path = save_checkpoint(tmp_path / "x3d_m.pyth", create_model("x3d_m", num_classes=12))
    _fails(capsys, ["--cfg", str(tiny.yaml), *tiny.opts(tmp_path / "o"), "TRAIN.ENABLE", "False",
                    "TEST.CHECKPOINT_FILE_PATH", str(path)], str(path), "holds a x3d_m", "builds vov3d_m")


def test_truncated_checkpoint(tiny, tmp_path, capsys):
    from vov3d.config import builders

    cfg = tiny.cfg(tmp_path / "o")
    path = save_checkpoint(tmp_path / "cut.pyth", builders.build_model(cfg))
    path.write_bytes(path.read_bytes()[:5000])
    _fails(capsys, ["--cfg", str(tiny.yaml), *tiny.opts(tmp_path / "o"), "TRAIN.ENABLE", "False",
                    "TEST.CHECKPOINT_FILE_PATH", str(path)], str(path), "truncated")


def test_missing_checkpoint(tiny, tmp_path, capsys):
    path = tmp_path / "absent.pyth"
    _fails(capsys, ["--cfg", str(tiny.yaml), *tiny.opts(tmp_path / "o"), "TRAIN.ENABLE", "False",
                    "TEST.CHECKPOINT_FILE_PATH", str(path)], str(path))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="without a GPU, NUM_GPUS N runs N CPU processes")
def test_num_gpus_beyond_the_gpus_present(tiny, tmp_path, capsys):
    present = torch.cuda.device_count()
    _fails(capsys, ["--cfg", str(tiny.yaml), *tiny.opts(tmp_path / "o"), "NUM_GPUS", str(present + 1)], "NUM_GPUS",
           f"at most {present}")


def test_several_shards_need_an_init_method(tiny, tmp_path, capsys):
    _fails(capsys, ["--cfg", str(tiny.yaml), "--num_shards", "2", "--shard_id", "0", *tiny.opts(tmp_path / "o")],
           "--num_shards 2", "--init_method")


def test_a_shard_id_outside_the_shards(tiny, tmp_path, capsys):
    _fails(capsys, ["--cfg", str(tiny.yaml), "--num_shards", "2", "--shard_id", "2", "--init_method",
                    "tcp://127.0.0.1:1", *tiny.opts(tmp_path / "o")], "SHARD_ID", "NUM_SHARDS")


def test_a_batch_that_does_not_divide_between_the_processes(tiny, tmp_path, capsys):
    # 2 CPU processes (no GPU) or 2 GPUs: TRAIN.BATCH_SIZE 3 cannot be split; said before any process starts
    if torch.cuda.is_available() and torch.cuda.device_count() < 2:
        pytest.skip("needs 2 GPUs or none")
    _fails(capsys, ["--cfg", str(tiny.yaml), *tiny.opts(tmp_path / "o"), "NUM_GPUS", "2", "TRAIN.BATCH_SIZE", "3",
                    "DIST_BACKEND", "gloo", "DIST_TIMEOUT", "30"], "TRAIN.BATCH_SIZE", "NUM_GPUS 2")


def test_vov3d_train_and_test_flags_map_to_keys(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    code = commands.train_main(["--cfg", str(tiny.yaml), "--data", str(tiny.data()), "--output", str(out),
                                "--epochs", "1", "--batch-size", "4", "--workers", "0", "TRAIN.EVAL_PERIOD", "5"])
    assert code == 0, capsys.readouterr().err
    assert (out / "checkpoints" / "checkpoint_epoch_00001.pyth").is_file()
    assert not (out / "predictions.jsonl").exists()  # vov3d train does not test
    from vov3d.config import load_config

    saved = load_config(out / "config.yaml")
    assert (saved.SOLVER.MAX_EPOCH, saved.TRAIN.BATCH_SIZE, saved.TEST.ENABLE) == (1, 4, False)
    capsys.readouterr()
    code = commands.test_main(["--cfg", str(tiny.yaml), "--data", str(tiny.data()), "--output", str(out),
                               "--views", "1", "--crops", "1"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "1 x 1" in printed and (out / "predictions.jsonl").is_file()
    _fails(capsys, ["--cfg", str(tiny.yaml), "--data", str(tmp_path / "none"), "--output", str(out)],
           str(tmp_path / "none"), fn=commands.test_main)
