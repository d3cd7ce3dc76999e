"""Two processes with SyncBN + DDP (gloo, spawned by launch) match one process with the whole batch."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

import dist_workers
from vov3d.engine import distributed as D
from vov3d.engine.precise_bn import update_bn_stats


def test_two_processes_with_sync_bn_match_one_process_with_the_total_batch(tmp_path: Path):
    # the job: 2 spawned processes, file:// rendezvous, SyncBN groups of 2, DDP, 3 SGD steps, precise BN
    D.launch(dist_workers.syncbn_job, (str(tmp_path), 2), num_processes=2, init_method=f"file://{tmp_path}/rdzv",
             backend="gloo", timeout_s=30, use_cuda=False, heartbeat_timeout_s=20)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]

    # the same in one process: plain BatchNorm over the whole batch of 8
    model = dist_workers.tiny_model()
    clips, labels = dist_workers.full_batch()
    losses = dist_workers.train_steps(model, clips, labels)
    trained = copy.deepcopy(model.state_dict())
    assert losses[-1] < losses[0]

    for r, result in enumerate(ranks):
        assert result["bn_type"] == "CPUSyncBatchNorm"
        assert result["alone_group"] == 1 and result["alone_diff"] == 0.0  # BN.NUM_SYNC_DEVICES 1: no sync
        assert result["threads"] == 1  # 2 processes on this 2-core machine: 1 thread each
        torch.testing.assert_close(torch.tensor(result["losses"]), torch.tensor(losses), rtol=1e-5, atol=1e-6)
    # weights after 3 steps (gradients through the synchronised BN included), to float32 rounding
    for name, value in trained.items():
        if "running" in name or "num_batches" in name:
            continue
        for result in ranks:
            torch.testing.assert_close(result["state"][name], value, rtol=1e-4, atol=1e-6, msg=name)
    assert not torch.equal(trained["0.weight"], dist_workers.tiny_model().state_dict()["0.weight"])  # it trained

    # precise BN: each rank on its own two batches (2 then 3 clips, 3 then 1), then averaged by clips
    # = one process's batch-size-weighted statistics over the two synchronised batches (5, then 4 clips)
    first, second = dist_workers.precise_batches(0), dist_workers.precise_batches(1)
    update_bn_stats(model, [torch.cat([first[0], second[0]]), torch.cat([first[1], second[1]])], num_batches=10)
    for key in ("1.running_mean", "1.running_var"):
        torch.testing.assert_close(ranks[0]["state"][key], ranks[1]["state"][key], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0]["state"][key], model.state_dict()[key], rtol=1e-4, atol=1e-5)
    # before the averaging the ranks disagreed (each weighted the batches by its own clips)
    assert not torch.allclose(ranks[0]["mean_before_average"], ranks[1]["mean_before_average"], atol=1e-3)
