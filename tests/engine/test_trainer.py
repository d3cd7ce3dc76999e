"""Training end to end on the tiny synthetic dataset (spec §9.3): files, resume, NaN, corrupt videos, devices."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from vov3d.engine import checkpointer
from vov3d.engine.trainer import SetupError, TrainingError, train


def _json_stats(log_text: str, kind: str) -> list[dict]:
    lines = [line.split("json_stats: ", 1)[1] for line in log_text.splitlines() if "json_stats: " in line]
    return [d for d in map(json.loads, lines) if d.get("_type") == kind]


def test_train_writes_checkpoints_config_stats_and_curves(tiny, tmp_path):
    from vov3d.utils.logging import setup_logging

    out = tmp_path / "run"
    setup_logging(out)
    cfg = tiny.cfg(out, TEST__ENABLE=False, TRAIN__EVAL_PERIOD=2)
    summary = train(cfg, progress=False)
    assert summary["epochs_run"] == 2
    names = [p.name for p in checkpointer.list_checkpoints(out)]
    assert names == ["checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth"]
    obj = torch.load(out / "checkpoints" / names[-1], weights_only=True)
    assert obj["epoch"] == 1 and "optimizer_state" in obj and "SOLVER" in obj["cfg"]
    # the resolved config beside the checkpoints loads back to the same values
    from vov3d.config import load_config

    again = load_config(out / "config.yaml")
    assert again.SOLVER.MAX_EPOCH == 2 and again.DATA.TRAIN_CROP_SIZE == 32
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = (out / "log.txt").read_text()
    iters = _json_stats(log, "train_iter")
    assert [d["iter"] for d in iters] == ["2/4", "4/4"] * 2  # LOG_PERIOD 2, 8 clips / batch 2
    epochs = _json_stats(log, "train_epoch")
    assert [d["epoch"] for d in epochs] == ["1/2", "2/2"]
    assert all(d["loss"] > 0 and 0 <= d["top1_err"] <= 100 for d in epochs)
    val = _json_stats(log, "val_epoch")
    assert [d["epoch"] for d in val] == ["2/2"]  # EVAL_PERIOD 2: the last epoch only
    # the LR was set from the fractional epoch: cosine from 0.05 over 2 epochs, iteration 2 of 4 = epoch 0.25
    import math

    assert iters[0]["lr"] == pytest.approx(0.05 * (math.cos(math.pi * 0.25 / 2) + 1) / 2, abs=1e-5)
    assert summary["history"][-1]["val_top1_err"] == pytest.approx(val[0]["top1_err"], abs=1e-4)
    # the curves' iteration points (every LOG_PERIOD) are the train_iter lines, at fractional epochs, and
    # travel in the checkpoint so that a resumed run draws the whole course
    points = obj["train_state"]["iteration_history"]
    assert [p["epoch"] for p in points] == [0.5, 1.0, 1.5, 2.0]
    assert [p["loss"] for p in points] == pytest.approx([d["loss"] for d in iters], abs=1e-4)
    assert [p["lr"] for p in points] == pytest.approx([d["lr"] for d in iters], abs=1e-5)  # the log rounds


def test_resume_after_the_last_epoch_trains_nothing_more(tiny, tmp_path):
    out = tmp_path / "run"
    train(tiny.cfg(out, SOLVER__MAX_EPOCH=1, TRAIN__EVAL_PERIOD=5), progress=False)
    before = (out / "checkpoints" / "checkpoint_epoch_00001.pyth").stat().st_mtime_ns
    summary = train(tiny.cfg(out, SOLVER__MAX_EPOCH=2, TRAIN__EVAL_PERIOD=5), progress=False)
    assert summary["start_epoch"] == 1 and summary["epochs_run"] == 2  # continued with epoch 2 only
    assert (out / "checkpoints" / "checkpoint_epoch_00001.pyth").stat().st_mtime_ns == before


def test_nan_loss_stops_with_epoch_and_iteration_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
    out = tmp_path / "run"
    train(tiny.cfg(out, SOLVER__MAX_EPOCH=1, TRAIN__EVAL_PERIOD=5), progress=False)
    good = out / "checkpoints" / "checkpoint_epoch_00001.pyth"
    # epoch 2 with an absurd learning rate: the weights blow up and the loss becomes NaN/Inf
    cfg = tiny.cfg(out, SOLVER__MAX_EPOCH=2, SOLVER__BASE_LR=1e30, TRAIN__EVAL_PERIOD=5,
                   TRAIN__CHECKPOINT_ITER_PERIOD=1)
    with pytest.raises(TrainingError) as info:
        train(cfg, progress=False)
    message = str(info.value)
    assert "epoch 2" in message and ("iteration" in message)
    assert str(good) in message or "checkpoint_epoch_00001" in message
    newest = checkpointer.newest_valid_checkpoint(out)
    assert newest is not None
    state = newest[1]["model_state"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_corrupt_training_video_is_skipped_logged_counted_and_the_run_finishes(tiny, tmp_path):
    from vov3d.utils.logging import setup_logging

    data = tmp_path / "kinetics"
    shutil.copytree(tiny.data("kinetics"), data)
    first = (data / "train.csv").read_text().splitlines()[3].split()[0]
    victim = data / first
    victim.write_bytes(victim.read_bytes()[:200])  # truncated mid-file
    out = tmp_path / "run"
    setup_logging(out)
    from vov3d.config import load_config

    cfg = load_config(tiny.yaml, ["DATA.PATH_TO_DATA_DIR", str(data), "OUTPUT_DIR", str(out),
                                  "TEST.ENABLE", "False", "TRAIN.EVAL_PERIOD", "5"])
    summary = train(cfg, progress=False)
    assert summary["epochs_run"] == 2
    assert summary["bad_samples"] == 2  # the video is drawn once an epoch, replaced each time
    log = (out / "log.txt").read_text()
    assert victim.name in log and "bad sample" in log
    assert [d.get("bad_samples") for d in _json_stats(log, "train_epoch")] == [1, 1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="without a GPU, NUM_GPUS N is N CPU processes (run_net)")
def test_num_gpus_beyond_the_gpus_present_is_a_clear_error(tiny, tmp_path):
    present = torch.cuda.device_count()
    cfg = tiny.cfg(tmp_path / "run", NUM_GPUS=present + 1)
    with pytest.raises(SetupError, match="NUM_GPUS"):
        train(cfg, progress=False)


def test_empty_train_split_is_an_error(tiny, tmp_path):
    from vov3d.data import DataError

    data = tmp_path / "kinetics"
    shutil.copytree(tiny.data("kinetics"), data)
    (data / "train.csv").write_text("")
    from vov3d.config import load_config

    cfg = load_config(tiny.yaml, ["DATA.PATH_TO_DATA_DIR", str(data), "OUTPUT_DIR", str(tmp_path / "run")])
    with pytest.raises(DataError, match="train"):
        train(cfg, progress=False)


def test_engine_benchmark_prints_its_rows_at_a_tiny_size(tiny, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("engine_benchmark", tiny.repo / "benchmarks" / "engine.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--data", str(tiny.data("kinetics")), "--frames", "4", "--size", "32", "--batch-size", "4",
                       "--epochs", "1", "--workers", "0", "--backend", "auto"]) == 0  # the prepared CPU step
    out = capsys.readouterr().out
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines() if "  " in line}
    for key in ("engine epoch clips/s", "bare step clips/s", "data loader clips/s", "engine / step", "loader / step"):
        assert key in rows, out
        value = float(rows[key][len(key):].split()[0])
        assert value > 0, rows[key]


def test_options_beyond_the_original_run_together_and_resume(tiny, tmp_path, caplog):
    """Mixup/cutmix, label smoothing, EMA, gradient accumulation, TensorBoard, precise BN; resume with EMA."""
    import logging

    out = tmp_path / "run"
    opts = dict(MIXUP__ENABLE=True, SOLVER__LABEL_SMOOTHING=0.1, EMA__ENABLE=True, EMA__DECAY=0.5,
                SOLVER__GRAD_ACCUM_STEPS=2, TENSORBOARD__ENABLE=True, TRAIN__CHECKPOINT_ITER_PERIOD=2,
                SOLVER__MAX_EPOCH=1, TEST__ENABLE=False, TRAIN__EVAL_PERIOD=1, BN__USE_PRECISE_STATS=True,
                BN__NUM_BATCHES_PRECISE=2)
    with caplog.at_level(logging.INFO, logger="vov3d.engine.trainer"):
        summary = train(tiny.cfg(out, **opts), progress=False)
    assert "precise BN: statistics recomputed on 2 training batches" in caplog.text
    assert summary["epochs_run"] == 1 and summary["val"]["top1_err"] >= 0
    obj = torch.load(out / "checkpoints" / "checkpoint_epoch_00001.pyth", weights_only=True)
    ema, model = obj["ema_state"], obj["model_state"]
    assert ema.keys() == model.keys()
    assert not torch.equal(ema["head.projection.weight"], model["head.projection.weight"])  # an average, not a copy
    assert "mixup_rng" in obj["train_state"]
    events = list((out / "runs-kinetics").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    # resuming the finished run with one more epoch restores the EMA and goes on
    summary = train(tiny.cfg(out, **{**opts, "SOLVER__MAX_EPOCH": 2}), progress=False)
    assert summary["start_epoch"] == 1 and summary["epochs_run"] == 2


def test_progress_bar_in_a_terminal_and_log_lines_always(caplog):
    import io
    import logging

    from vov3d.engine.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with caplog.at_level(logging.INFO, logger="vov3d.progress"):
        with Progress("train epoch 1/3", 4, log_period=2, stream=screen, refresh_seconds=0) as bar:
            for _ in range(4):
                bar.update(8, loss=1.25, lr=0.1)
    shown = screen.getvalue()
    assert "train epoch 1/3" in shown and "loss=1.2500" in shown and "clips/s" in shown and "4/4" in shown
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[-1].startswith("train epoch 1/3 iter 4/4, eta 0:00:00, clips/s")
    piped = io.StringIO()  # not a terminal: no bar, the log lines only
    with Progress("test", 2, log_period=1, stream=piped) as bar:
        bar.update(1)
    assert piped.getvalue() == ""


def test_model_info_logs_params_and_gflops(tiny, tmp_path, caplog):
    import logging

    from vov3d.config import builders
    from vov3d.engine.trainer import _log_model_info

    cfg = tiny.cfg(tmp_path, LOG_MODEL_INFO=True)
    with caplog.at_level(logging.INFO, logger="vov3d.engine.trainer"):
        _log_model_info(cfg, builders.build_model(cfg))
    line = caplog.records[-1].getMessage()
    assert line.startswith("model vov3d_m: 3.01M params") and "GFLOPs" in line and "4x32²" in line
    assert float(line.split("params, ")[1].split()[0]) > 0


@pytest.mark.parametrize("backend", ["eager", "channels_last", "kernels"])
def test_train_backend_picks_the_step_and_keeps_the_models_parameters(backend):
    from vov3d.accel import BackendUnavailable
    from vov3d.accel.channels_last import ChannelsLastNetwork
    from vov3d.config import load_config
    from vov3d.engine.trainer import build_train_model
    from vov3d.models import create_model

    cfg = load_config(None, ["TRAIN.BACKEND", backend])  # the config accepts every CPU step by name
    model = create_model("vov3d_m", num_classes=4, num_frames=4, train_crop_size=32, dropout=0.0)
    try:
        runner = build_train_model(model, torch.device("cpu"), cfg.TRAIN.BACKEND, False, True)
    except BackendUnavailable as error:  # kernels: no C compiler here
        pytest.skip(str(error))
    if backend == "eager":
        assert runner is model
    else:
        assert isinstance(runner, ChannelsLastNetwork)
        assert (runner.lib is None) == (backend == "channels_last")
    assert list(runner.state_dict()) == list(model.state_dict())
    x = torch.randn(2, 3, 4, 32, 32)
    runner.train()
    torch.nn.functional.cross_entropy(runner(x), torch.tensor([0, 3])).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
