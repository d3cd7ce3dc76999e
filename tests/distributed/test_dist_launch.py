"""The original's launch (spec §10): spawned local processes, and several "machines" joined with
--num_shards/--shard_id/--init_method as real OS processes on 127.0.0.1; lost workers."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

import dist_workers
from dist_helpers import SCRIPTS, free_port
from vov3d.engine import distributed as D

JOB = SCRIPTS / "join_and_reduce.py"
HEARTBEAT = 4.0  # seconds without a heartbeat before a rank counts as lost
BOUND = 45.0  # seconds a survivor may take to end after a kill, generous for this loaded 2-core machine


def shard(processes, out: Path, shard_id: int, port: int, *extra: str):
    return processes.start([sys.executable, JOB, "--out", out, "--num_shards", "2", "--shard_id", str(shard_id),
                            "--init_method", f"tcp://127.0.0.1:{port}", "--heartbeat_timeout", str(HEARTBEAT),
                            "--timeout", "30", *extra])


def wait_for(path: Path, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            pytest.fail(f"{path} was not written within {timeout} s")
        time.sleep(0.1)


def test_two_shards_join_with_the_original_flags_and_all_reduce(tmp_path: Path, processes):
    port = free_port()
    procs = [shard(processes, tmp_path, k, port) for k in (0, 1)]
    results = [processes.finish(p, 90) for p in procs]
    for status, output, _ in results:
        assert status == 0, output
    infos = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for rank, info in enumerate(infos):  # global rank = shard_id * processes per machine + local rank
        assert (info["rank"], info["world"], info["local_rank"], info["local_world"]) == (rank, 2, 0, 1)
        assert info["sum"] == 3.0 and info["gathered"] == [0, 10] and info["backend"] == "gloo"
        assert info["threads"] == D.threads_per_process(1)  # alone on its "machine": every core


def test_a_killed_local_worker_ends_the_job_naming_its_rank(tmp_path: Path):
    start = time.monotonic()
    with pytest.raises(D.WorkerFailed) as err:
        D.launch(dist_workers.reduce_job, (str(tmp_path), 1, 60.0), num_processes=2, backend="gloo",
                 timeout_s=30, use_cuda=False, heartbeat_timeout_s=HEARTBEAT)
    elapsed = time.monotonic() - start
    assert err.value.rank == 1 and err.value.exit_code == -9
    assert "rank 1" in str(err.value) and "SIGKILL" in str(err.value)
    assert elapsed < BOUND + 30  # startup included; without the fault handling it would run 60 s
    info = json.loads((tmp_path / "rank0.json").read_text())
    assert info["local_world"] == 2 and info["threads"] == D.threads_per_process(2)
    with pytest.raises(ProcessLookupError):  # the survivor was ended, not left running
        os.kill(info["pid"], 0)


@pytest.mark.parametrize("killed", [1, 0])
def test_a_killed_worker_on_another_machine_ends_the_survivor_naming_the_rank(tmp_path: Path, processes, killed):
    port = free_port()
    procs = [shard(processes, tmp_path, k, port, "--kill_rank", str(killed)) for k in (0, 1)]
    for r in (0, 1):
        wait_for(tmp_path / f"rank{r}.json", 90)
    killed_status, _, _ = processes.finish(procs[killed], 60)
    assert killed_status == -9
    status, output, waited = processes.finish(procs[1 - killed], BOUND)
    assert status == D.LOST_RANK_EXIT_STATUS, output
    assert waited < BOUND
    if killed == 1:
        assert "rank 0: lost rank 1: no heartbeat" in output
    else:  # rank 0 also hosted the rendezvous store (tcp:// init)
        assert "rank 1:" in output and "rank 0" in output and "lost" in output


def test_a_hung_worker_is_named_after_the_collective_timeout_and_nobody_waits_forever(tmp_path: Path, processes):
    port = free_port()  # rank 1 sleeps instead of all-reducing; DIST_TIMEOUT 5 s
    procs = [shard(processes, tmp_path, k, port, "--hang_rank", "1", "--timeout", "5") for k in (0, 1)]
    for r in (0, 1):
        wait_for(tmp_path / f"rank{r}.json", 90)
    status, output, _ = processes.finish(procs[0], BOUND)
    assert status != 0 and "rank(s) 1 did not answer" in output and "Timed out" in output, output
    # the hung rank itself ends once rank 0 (the store's host) is gone
    status, output, _ = processes.finish(procs[1], BOUND)
    assert status == D.LOST_RANK_EXIT_STATUS and "rank 1: the job's rendezvous store stopped answering" in output
