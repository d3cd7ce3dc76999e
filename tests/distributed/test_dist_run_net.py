"""tools/run_net.py as a distributed job of real processes (issue 18; CPU, gloo, 127.0.0.1).

Equality by design: the per-video test scores of a job of two processes are compared with those of
one process testing the same checkpoint. Both see every view once (the DistributedSampler pads 9
views to 10; the ensemble drops the duplicate), the model is the same and eval-mode BN uses the
checkpoint's statistics, so the only differences are float rounding (views are batched and summed
in another order). Comparing training itself between 1 and 2 processes is not exact at this tiny
size: with 16 values a channel in the last stage the batch-norm gradients are ill-conditioned, and
float32 rounding differences of the two reductions grow to a few percent after one step at
BASE_LR 0.05; the SyncBN maths is checked exactly in test_dist_syncbn.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch

from dist_helpers import REPO, TORCHRUN, free_port
from vov3d.checkpoint import read_checkpoint, save_checkpoint
from vov3d.engine import checkpointer
from vov3d.engine.predictions import read_predictions

RUN_NET = REPO / "tools" / "run_net.py"
BOUND = 45.0  # seconds: a job with a lost rank must have ended by then

YAML = """\
TRAIN: {ENABLE: True, DATASET: kinetics, BATCH_SIZE: 4, EVAL_PERIOD: 10, CHECKPOINT_PERIOD: 1, AUTO_RESUME: True,
        BACKEND: eager}
DATA: {NUM_FRAMES: 4, SAMPLING_RATE: 2, TRAIN_JITTER_SCALES: [32, 36], TRAIN_CROP_SIZE: 32, TEST_CROP_SIZE: 32,
       INPUT_CHANNEL_NUM: [3]}
TEST: {ENABLE: True, DATASET: kinetics, BATCH_SIZE: 2, NUM_ENSEMBLE_VIEWS: 3, NUM_SPATIAL_CROPS: 1}
MODEL: {NUM_CLASSES: 12, ARCH: vov3d, MODEL_NAME: VoV3D, DROPOUT_RATE: 0.0}
SOLVER: {BASE_LR: 0.05, LR_POLICY: cosine, MAX_EPOCH: 2, WARMUP_EPOCHS: 0.0, WEIGHT_DECAY: 5e-5}
BN: {USE_PRECISE_STATS: True, NUM_BATCHES_PRECISE: 2, NORM_TYPE: sync_batchnorm, GLOBAL_SYNC: True}
DATA_LOADER: {NUM_WORKERS: 0, PIN_MEMORY: False}
NUM_GPUS: 0
RNG_SEED: 0
LOG_PERIOD: 1
LOG_MODEL_INFO: False
DIST_BACKEND: gloo
DIST_TIMEOUT: 60
"""


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    """A folder with tiny.yaml and a tiny built-in dataset (8 train, 2 val, 3 test videos)."""
    from vov3d.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("dist_run_net")
    (root / "tiny.yaml").write_text(YAML, encoding="utf-8")
    generate_dataset(root / "data", formats="kinetics", seed=0, num_train=8, num_val=2, num_test=3,
                     frame_size=(48, 32), num_frames=16, num_workers=1)
    return root


def opts(job: Path, out: Path, *more: str) -> list[str]:
    return ["DATA.PATH_TO_DATA_DIR", str(job / "data" / "kinetics"), "OUTPUT_DIR", str(out), *more]


def run_net(job: Path, out: Path, *more: str) -> list:
    return [sys.executable, RUN_NET, "--cfg", job / "tiny.yaml", *opts(job, out, *more)]


def one_process_scores(job: Path, checkpoint: Path, out: Path) -> list[dict]:
    """The per-video predictions of one process testing ``checkpoint`` (in this process)."""
    from vov3d.config import load_config
    from vov3d.engine.tester import test

    cfg = load_config(job / "tiny.yaml", opts(job, out, "TRAIN.ENABLE", "False", "TEST.CHECKPOINT_FILE_PATH",
                                              str(checkpoint)))
    test(cfg, progress=False)
    return read_predictions(out / "predictions.jsonl")


def assert_same_scores(two: list[dict], one: list[dict]) -> None:
    assert [p["video"] for p in two] == [p["video"] for p in one] and len(one) == 3
    for a, b in zip(two, one):
        assert a["top_ids"] == b["top_ids"], (a, b)
        assert a["top_scores"] == pytest.approx(b["top_scores"], abs=1e-5), (a, b)


def random_checkpoint(path: Path) -> Path:
    """A checkpoint of the YAML's model with its initial weights (for the test-only jobs)."""
    from vov3d.config import builders, load_config

    torch.manual_seed(3)
    model = builders.build_model(load_config(None, ["MODEL.NUM_CLASSES", "12", "MODEL.ARCH", "vov3d",
                                                     "MODEL.MODEL_NAME", "VoV3D"]))
    for module in model.modules():  # statistics other than 0/1, so that eval-mode BN matters
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    save_checkpoint(path, model, epoch=0)
    return path


def wait_until(condition, proc, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > end:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"{what} did not happen; output:\n{proc.communicate()[0]}")
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(t) for t in (task / "children").read_text().split()]
    return sorted(found)


def test_two_processes_train_are_killed_resume_and_test_like_one_process(job: Path, tmp_path: Path, processes):
    out = tmp_path / "two"
    argv = run_net(job, out, "NUM_GPUS", "2")  # no GPU here: two CPU processes (gloo)
    first = processes.start(argv)
    wait_until(lambda: checkpointer.epoch_checkpoint_path(out, 0).exists(), first, 240, "epoch 1's checkpoint")
    os.killpg(first.pid, signal.SIGKILL)  # the whole job, in epoch 2
    first.communicate()
    status, output, _ = processes.finish(processes.start(argv), 240)
    assert status == 0, output
    log = (out / "log.txt").read_text(encoding="utf-8")
    assert f"resuming from {checkpointer.epoch_checkpoint_path(out, 0)}: epoch 2" in log
    final = checkpointer.epoch_checkpoint_path(out, 1)
    state = read_checkpoint(final)["train_state"]
    assert [h["epoch"] for h in state["history"]] == [1, 2]  # rank 0's history: epoch 1 restored, epoch 2 run
    assert len(state["torch_rng_by_rank"]) == 2
    assert output.count("top-1 accuracy") == 1  # the summary and the predictions come from rank 0 only
    two = read_predictions(out / "predictions.jsonl")
    assert_same_scores(two, one_process_scores(job, final, tmp_path / "one"))


def test_two_torchrun_nodes_run_tools_run_net(job: Path, tmp_path: Path, processes):
    checkpoint = random_checkpoint(tmp_path / "weights.pyth")
    out, port = tmp_path / "two", free_port()
    nodes = [processes.start([
        TORCHRUN, "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(n), "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "run_net", "--monitor-interval", "0.2", RUN_NET,
        "--cfg", job / "tiny.yaml",
        *opts(job, out, "TRAIN.ENABLE", "False", "TEST.CHECKPOINT_FILE_PATH", str(checkpoint)),
    ]) for n in (0, 1)]
    outputs = []
    for proc in nodes:
        status, output, _ = processes.finish(proc, 120)
        assert status == 0, output
        outputs.append(output)
    assert "".join(outputs).count("top-1 accuracy") == 1
    assert_same_scores(read_predictions(out / "predictions.jsonl"), one_process_scores(job, checkpoint, tmp_path / "one"))


def test_two_shards_with_the_original_flags(job: Path, tmp_path: Path, processes):
    checkpoint = random_checkpoint(tmp_path / "weights.pyth")
    out, init = tmp_path / "two", f"tcp://127.0.0.1:{free_port()}"
    shards = [processes.start([
        sys.executable, RUN_NET, "--cfg", job / "tiny.yaml", "--num_shards", "2", "--shard_id", str(s),
        "--init_method", init, *opts(job, out, "NUM_GPUS", "1", "TRAIN.ENABLE", "False",
                                     "TEST.CHECKPOINT_FILE_PATH", str(checkpoint)),
    ]) for s in (0, 1)]
    for proc in shards:
        status, output, _ = processes.finish(proc, 120)
        assert status == 0, output
    assert_same_scores(read_predictions(out / "predictions.jsonl"), one_process_scores(job, checkpoint, tmp_path / "one"))


def test_a_killed_worker_ends_the_job_naming_its_rank(job: Path, tmp_path: Path, processes):
    out = tmp_path / "run"
    parent = processes.start(run_net(job, out, "NUM_GPUS", "2", "SOLVER.MAX_EPOCH", "100", "TEST.ENABLE", "False"))
    wait_until(lambda: (out / "log.txt").exists() and '"train_iter"' in (out / "log.txt").read_text(), parent, 240,
               "a training iteration")
    workers = children(parent.pid)
    workers = [w for w in workers if Path(f"/proc/{w}/cmdline").read_bytes().count(b"spawn_main")]  # not the resource tracker
    assert len(workers) == 2, workers
    os.kill(workers[1], signal.SIGKILL)  # started second: local rank 1 = rank 1
    status, output, waited = processes.finish(parent, BOUND)
    assert status != 0 and waited < BOUND, output
    assert "error: rank 1 (process 1 of shard 0) was killed by signal SIGKILL" in output
    assert "Traceback" not in output


def test_under_torchrun_max_restarts_a_killed_worker_resumes_mid_epoch_and_finishes(job: Path, tmp_path: Path,
                                                                                    processes):
    out = tmp_path / "run"
    proc = processes.start([
        TORCHRUN, "--standalone", "--nproc-per-node", "2", "--max-restarts", "1", "--monitor-interval", "0.2",
        RUN_NET, "--cfg", job / "tiny.yaml",
        *opts(job, out, "TRAIN.CHECKPOINT_ITER_PERIOD", "1", "TEST.ENABLE", "False"),
    ], {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"})  # torch 2.13: see docs/distributed.md
    mid = checkpointer.iter_checkpoint_path(out, 0, 1)  # epoch 1 after its first iteration
    wait_until(mid.exists, proc, 240, "the first mid-epoch checkpoint")
    workers = children(proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[1], signal.SIGKILL)
    newest_at_kill = checkpointer.list_checkpoints(out)[-1]
    status, output, _ = processes.finish(proc, 240)
    assert status == 0, output
    log = (out / "log.txt").read_text(encoding="utf-8")
    resumed = [line.split("resuming from ")[1].split(":")[0] for line in log.splitlines() if "resuming from" in line]
    assert len(resumed) == 1, log
    # every iteration is checkpointed: resuming from the newest file at the kill (or one rank 0 finished
    # writing just after it) loses at most the iteration in progress
    assert checkpointer._position(Path(resumed[0])) >= checkpointer._position(newest_at_kill), (resumed, newest_at_kill)
    state = read_checkpoint(checkpointer.epoch_checkpoint_path(out, 1))["train_state"]
    assert [h["epoch"] for h in state["history"]] == [1, 2]  # SOLVER.MAX_EPOCH epochs, each once
    epochs = [json.loads(line.split("json_stats: ")[1])["epoch"] for line in log.splitlines()
              if '"train_epoch"' in line]
    assert epochs[-2:] == ["1/2", "2/2"]
