"""Two "machines" on 127.0.0.1 under torchrun (--nnodes 2, c10d rendezvous) as real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from dist_helpers import SCRIPTS, TORCHRUN, free_port
from vov3d.engine import distributed as D

JOB = SCRIPTS / "join_and_reduce.py"
BOUND = 45.0


def node_args(out: Path, port: int, node_rank: int, max_restarts: str, *extra: str) -> list:
    return [TORCHRUN, "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node_rank),
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "test",
            "--max-restarts", max_restarts, "--monitor-interval", "0.2", JOB, "--out", out,
            "--heartbeat_timeout", "4", "--timeout", "30", *extra]


def node(processes, out: Path, port: int, node_rank: int, *extra: str):
    return processes.start(node_args(out, port, node_rank, "0", *extra))


def test_two_torchrun_nodes_join_and_all_reduce(tmp_path: Path, processes):
    port = free_port()
    nodes = [node(processes, tmp_path, port, n) for n in (0, 1)]
    for proc in nodes:
        status, output, _ = processes.finish(proc, 120)
        assert status == 0, output
    infos = sorted((json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)), key=lambda i: i["rank"])
    assert [i["rank"] for i in infos] == [0, 1]
    for info in infos:
        assert (info["world"], info["local_rank"], info["local_world"], info["sum"]) == (2, 0, 1, 3.0)
        assert info["gathered"] == [0, 10] and info["backend"] == "gloo"
        assert info["threads"] == D.threads_per_process(1)


def wait_for_port(port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def test_a_killed_torchrun_worker_ends_both_nodes_naming_the_rank(tmp_path: Path, processes):
    port = free_port()
    # node 0 first, so that its agent hosts the rendezvous store (the endpoint is node 0's, as on a cluster)
    nodes = [node(processes, tmp_path, port, 0, "--keep_going")]
    wait_for_port(port, 60)
    nodes.append(node(processes, tmp_path, port, 1, "--keep_going"))
    end = time.monotonic() + 120
    while not all((tmp_path / f"rank{r}.json").exists() for r in (0, 1)):
        if time.monotonic() > end or any(p.poll() is not None for p in nodes):
            pytest.fail("the job did not start: " + "\n".join(p.communicate()[0] for p in nodes))
        time.sleep(0.1)
    infos = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    victim = next(i for i in infos if i["ppid"] == nodes[1].pid)  # the worker of node 1 (c10d picks its rank)
    survivor = next(i for i in infos if i is not victim)
    os.kill(victim["pid"], signal.SIGKILL)
    status, output, waited = processes.finish(nodes[0], BOUND)
    assert status != 0 and waited < BOUND, output
    assert f"rank {survivor['rank']}: lost rank {victim['rank']}: no heartbeat" in output  # our watchdog
    status, output, _ = processes.finish(nodes[1], BOUND)
    assert status != 0 and f"Signal 9 (SIGKILL) received by PID {victim['pid']}" in output  # torchrun's report
    assert f"rank      : {victim['rank']}" in output


def test_under_max_restarts_a_killed_worker_restarts_the_job_on_both_nodes_and_it_finishes(tmp_path: Path, processes):
    port = free_port()
    # torch 2.13: restarts across machines need the workers' own store (docs/distributed.md)
    env = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    args = ["--kill_rank", "1", "--kill_once"]
    nodes = [processes.start(node_args(tmp_path, port, 0, "1", *args), env)]
    wait_for_port(port, 60)
    nodes.append(processes.start(node_args(tmp_path, port, 1, "1", *args), env))
    for proc in nodes:
        status, output, _ = processes.finish(proc, 150)
        assert status == 0, output
    killed_pid = int((tmp_path / "killed").read_text())
    infos = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(info["pid"] != killed_pid and info["sum"] == 3.0 for info in infos)  # written by the new round
