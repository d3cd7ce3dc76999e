"""A real training process killed with SIGKILL mid-epoch resumes from its mid-epoch checkpoint and
ends with the same weights and losses as an uninterrupted run of the same seed (issue 16 item 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import torch

from vov3d.engine import checkpointer
from vov3d.engine.trainer import train


def _epoch_losses(log_path) -> list[float]:
    stats = [json.loads(line.split("json_stats: ", 1)[1]) for line in log_path.read_text().splitlines()
             if "json_stats: " in line]
    return [d["loss"] for d in stats if d.get("_type") == "train_epoch"]


def test_kill_during_an_epoch_then_resume_loses_nothing_but_the_unfinished_iterations(tiny, tmp_path):
    from vov3d.utils.logging import setup_logging

    common = dict(TEST__ENABLE=False, TRAIN__EVAL_PERIOD=5, TRAIN__CHECKPOINT_ITER_PERIOD=2)

    # the killed run: a real process, SIGKILL once a mid-epoch checkpoint of epoch 2 exists
    killed = tmp_path / "killed"
    argv = [tiny.python, str(tiny.repo / "tools" / "run_net.py"), "--cfg", str(tiny.yaml),
            *tiny.opts(killed, **common)]
    child = subprocess.Popen(argv, env=tiny.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    target = checkpointer.iter_checkpoint_path(killed, 1, 2)  # epoch 2, 2 of its 4 iterations done
    deadline = time.monotonic() + 120
    try:
        while not target.exists():
            assert child.poll() is None, f"training ended before the kill: {child.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no mid-epoch checkpoint appeared"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    newest = checkpointer.last_checkpoint(killed)
    assert newest is not None and "_iter_" in newest.name, newest  # it died inside epoch 2
    done_before_kill = int(newest.stem.split("_iter_")[1])
    assert 2 <= done_before_kill < 4

    # resume in this process: it continues at the recorded iteration of epoch 2
    setup_logging(killed)
    resumed = train(tiny.cfg(killed, **common), progress=False)
    assert (resumed["start_epoch"], resumed["start_iter"]) == (1, done_before_kill)
    assert resumed["epochs_run"] == 2

    # the same run without interruption
    straight = tmp_path / "straight"
    setup_logging(straight)
    # (no mid-epoch checkpoints there: writing them must not change the run)
    reference = train(tiny.cfg(straight, **{**common, "TRAIN__CHECKPOINT_ITER_PERIOD": 0}), progress=False)

    final = torch.load(checkpointer.epoch_checkpoint_path(killed, 1), weights_only=True)["model_state"]
    expected = torch.load(checkpointer.epoch_checkpoint_path(straight, 1), weights_only=True)["model_state"]
    for key, value in expected.items():
        torch.testing.assert_close(final[key], value, rtol=1e-5, atol=1e-6, msg=key)
    # epoch 2's loss (a mean over all its iterations, the ones before the kill included) is the same
    assert resumed["train"]["loss"] == reference["train"]["loss"] or abs(
        resumed["train"]["loss"] - reference["train"]["loss"]) < 1e-5
    # the killed run's log holds epoch 1 (before the kill) and epoch 2 (after the resume)
    losses = _epoch_losses(killed / "log.txt")
    assert len(losses) == 2 and abs(losses[0] - _epoch_losses(straight / "log.txt")[0]) < 1e-5
    # only the newest mid-epoch file is kept, and the end of epoch 2 replaced it
    assert not [p for p in checkpointer.list_checkpoints(killed) if "_iter_" in p.name]


def test_resumable_loader_skips_whole_batches_without_changing_the_order(tiny, tmp_path):
    """With worker processes and persistent workers too: the skipped batches are never decoded."""
    from vov3d.config import builders
    from vov3d.data import build_loader
    from vov3d.engine.trainer import make_resumable, set_loader_epoch

    cfg = tiny.cfg(tmp_path)
    dataset = builders.build_dataset(cfg, "train")
    loader = make_resumable(build_loader(dataset, 2, shuffle=True, drop_last=True, num_workers=1, seed=3,
                                         persistent_workers=True))

    def indices(epoch: int, skip_batches: int = 0) -> list[int]:
        loader.sampler.skip = skip_batches * loader.batch_size
        set_loader_epoch(loader, epoch)
        return [int(i) for _clips, _labels, index, _meta in loader for i in index]

    full = indices(1)
    assert sorted(full) == list(range(len(dataset)))
    assert indices(1, skip_batches=2) == full[4:]  # the same epoch, resumed after 2 batches
    assert indices(1) == full  # the skip applies once
    assert indices(2) != full  # another epoch, another order


def test_mid_epoch_checkpoint_with_another_batch_size_restarts_the_epoch(tiny, tmp_path, caplog):
    """The sample order of a resumed epoch needs the same clips per iteration: else the epoch restarts."""
    import logging

    out = tmp_path / "run"
    cfg = tiny.cfg(out, TEST__ENABLE=False, TRAIN__EVAL_PERIOD=5, SOLVER__MAX_EPOCH=1)
    from vov3d.config import builders

    model = builders.build_model(cfg)
    path = checkpointer.iter_checkpoint_path(out, 0, 2)
    checkpointer.write_checkpoint(path, model, None, finished_epoch=-1, cfg_yaml=cfg.dump(),
                                  train_state={"epoch": 0, "iter": 2, "clips_per_iteration": 4, "rng_seed": 0})
    with caplog.at_level(logging.WARNING, logger="vov3d.engine.trainer"):
        summary = train(cfg, progress=False)  # TRAIN.BATCH_SIZE 2, not 4
    assert (summary["start_epoch"], summary["start_iter"]) == (0, 0)
    assert "restarts from its beginning" in caplog.text and "TRAIN.BATCH_SIZE" in caplog.text


def test_sigterm_checkpoints_the_position_then_the_same_command_resumes(tiny, tmp_path, capsys):
    """A preemption's SIGTERM: the position in the epoch is saved (no CHECKPOINT_ITER_PERIOD needed), exit 143."""
    import threading

    from vov3d.engine import run_net

    out = tmp_path / "run"
    argv = ["--cfg", str(tiny.yaml), *tiny.opts(out, TEST__ENABLE=False, TRAIN__EVAL_PERIOD=5, SOLVER__MAX_EPOCH=3)]
    started = time.monotonic()

    def preempt() -> None:  # once the first epoch's checkpoint exists, i.e. during epoch 2 or 3
        while not checkpointer.epoch_checkpoint_path(out, 0).exists() and time.monotonic() - started < 60:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=preempt, daemon=True)
    killer.start()
    assert run_net.main(argv) == run_net.STOPPED_STATUS
    killer.join()
    err = capsys.readouterr().err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    saved = checkpointer.last_checkpoint(out)
    assert str(saved) in err
    assert run_net.main(argv) == 0  # the same command resumes and finishes
    assert checkpointer.last_checkpoint(out).name == "checkpoint_epoch_00003.pyth"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed after training
