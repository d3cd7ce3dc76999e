"""Functions the distributed tests run in every process of a job (importable by spawned children)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import torch
from torch import nn

from vov3d.engine import distributed as D
from vov3d.engine.precise_bn import update_bn_stats

STEPS = 3
LR = 0.1


def tiny_model() -> nn.Module:
    """Conv3d + BatchNorm3d + Linear, the same initial weights in every process."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 5),
    )


def full_batch(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole batch of the job (every step the same clips, for a deterministic comparison)."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(size, 3, 4, 8, 8, generator=g) * 2 + 0.5, torch.randint(0, 5, (size,), generator=g)


def precise_batches(rank: int) -> list[torch.Tensor]:
    """Two batches a rank (with SyncBN every rank must run as many forwards), of unequal sizes:
    rank 0 gets 2 then 3 clips, rank 1 gets 3 then 1."""
    g = torch.Generator().manual_seed(2)
    clips = torch.randn(9, 3, 4, 8, 8, generator=g) * 3 - 1
    return [clips[:2], clips[2:5]] if rank == 0 else [clips[5:8], clips[8:]]


def train_steps(model: nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> list[float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    losses = []
    for _ in range(STEPS):
        loss = nn.functional.cross_entropy(model(clips), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def syncbn_job(out_dir: str, num_sync_devices: int) -> None:
    """SyncBN + DDP on this rank's half of the batch; precise BN averaged; results to out_dir/rank{r}.pt."""
    rank, world = D.get_rank(), D.get_world_size()
    model = D.convert_sync_batchnorm(tiny_model(), num_sync_devices, global_sync=False)
    ddp = D.wrap_ddp(model, torch.device("cpu"))
    clips, labels = full_batch()
    half = clips.shape[0] // world
    mine = slice(rank * half, (rank + 1) * half)
    losses = train_steps(ddp, clips[mine], labels[mine])
    mean_losses = [float(D.all_reduce_mean(torch.tensor(v))) for v in losses]
    batches = precise_batches(rank)
    update_bn_stats(D.unwrap_model(ddp), batches, num_batches=10)
    before = D.unwrap_model(ddp)[1].running_mean.clone()
    D.average_bn_stats(D.unwrap_model(ddp), num_samples=sum(b.shape[0] for b in batches))
    # groups of one process (BN.NUM_SYNC_DEVICES 1 of 2): subgroups, each rank normalises its own clips only
    alone = D.convert_sync_batchnorm(tiny_model(), 1, global_sync=False)
    plain = tiny_model()
    alone_diff = float((alone(clips[mine]) - plain(clips[mine])).abs().max())
    alone_group = torch.distributed.get_world_size(alone[1].process_group)
    torch.save({"losses": mean_losses, "alone_diff": alone_diff, "alone_group": alone_group, "state": D.unwrap_model(ddp).state_dict(),
                "bn_type": type(D.unwrap_model(ddp)[1]).__name__, "mean_before_average": before,
                "threads": torch.get_num_threads()},
               Path(out_dir) / f"rank{rank}.pt")


def reduce_job(out_dir: str, kill_rank: int = -1, seconds: float = 60.0, hang_rank: int = -1,
               keep_going: bool = False, kill_once: bool = False) -> None:
    """All-reduce rank+1 and gather the ranks; write out_dir/rank{r}.json. ``kill_rank`` SIGKILLs
    itself after the first all-reduce (``hang_rank`` sleeps instead) while the others go on
    all-reducing for ``seconds``; with ``keep_going`` every rank goes on (for a kill from outside).
    With ``kill_once`` the kill happens in the first run only (a marker file says it happened), so
    that a restarted job finishes."""
    rank = D.get_rank()
    marker = Path(out_dir) / "killed"
    if kill_once and marker.exists():  # every rank decides before any collective: the restarted job
        kill_rank = -1
    total = D.all_reduce_sum(torch.tensor([float(rank + 1)]))
    info = {"rank": rank, "world": D.get_world_size(), "local_rank": D.get_local_rank(),
            "local_world": D.get_local_world_size(), "sum": float(total), "threads": torch.get_num_threads(),
            "gathered": D.all_gather_object(rank * 10), "pid": os.getpid(), "ppid": os.getppid(),
            "attempt": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)),
            "backend": torch.distributed.get_backend() if D.is_initialized() else None}
    tmp = Path(out_dir) / f"rank{rank}.json.tmp"
    tmp.write_text(json.dumps(info))
    tmp.replace(Path(out_dir) / f"rank{rank}.json")
    if kill_rank < 0 and hang_rank < 0 and not keep_going:
        return
    D.barrier()  # everybody wrote its file
    if rank == kill_rank:
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    if rank == hang_rank:
        time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        D.all_reduce_sum(torch.ones(1))
        time.sleep(0.05)


def prepared_ddp_job(out_dir: str) -> None:
    """The fast CPU step (vov3d.accel.prepare_for_training) inside DDP, as the trainer builds it: a tiny
    VoV3D seeded differently on each rank, one step on this rank's own clips; results to out_dir/rank{r}.pt."""
    from vov3d.accel import prepare_for_training
    from vov3d.models import create_model

    rank = D.get_rank()
    torch.manual_seed(10 + rank)  # DDP must make rank 0's weights everyone's
    model = create_model("vov3d_m", num_classes=5, dropout=0.0, num_frames=4, train_crop_size=32)
    prepared = prepare_for_training(model)
    ddp = D.wrap_ddp(prepared, torch.device("cpu"))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    clips = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(rank))
    labels = torch.tensor([1, 3]) if rank == 0 else torch.tensor([0, 4])
    ddp.train()
    nn.functional.cross_entropy(ddp(clips), labels).backward()
    torch.save({"prepared": type(prepared).__name__, "initial": initial,
                "grads": {n: p.grad for n, p in model.named_parameters()},
                "unwrapped_keys": sorted(D.unwrap_model(ddp).state_dict())}, Path(out_dir) / f"rank{rank}.pt")
