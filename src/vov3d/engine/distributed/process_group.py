"""This process's place in a torch.distributed job: set-up, queries, and the few collectives the
engine needs (issue 18; spec §10 for the original's launch).

Plain arguments only (no config objects). A process that never joined a group is a job of one:
rank 0 of 1, and every collective is the identity, so the engine calls these unconditionally.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "gloo", "nccl")
# Environment variables a launcher sets for every worker (torchrun; our spawn path sets them too).
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
_diagnosis_group: Any = None


def resolve_backend(backend: str, use_cuda: bool) -> str:
    """DIST_BACKEND -> the backend to use: "auto" is nccl with CUDA, gloo without.

    "nccl" without CUDA (the original's default, spec §7.1, on a CPU machine) falls back to gloo with
    a warning instead of failing; "gloo" is allowed with CUDA (it is slower, not wrong).
    """
    name = str(backend).lower()
    if name not in BACKENDS:
        raise ValueError(f"DIST_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if name == "auto":
        return "nccl" if use_cuda else "gloo"
    if name == "nccl" and not use_cuda:
        logger.warning("DIST_BACKEND nccl needs CUDA; this CPU job uses gloo")
        return "gloo"
    return name


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_process(local_world_size: int, cores: int | None = None) -> int:
    """Intra-op threads for each of ``local_world_size`` processes sharing ``cores``: never fewer than 1."""
    if local_world_size < 1:
        raise ValueError(f"local_world_size must be >= 1, got {local_world_size}")
    cores = available_cores() if cores is None else cores
    return max(1, cores // local_world_size)


def under_torchrun() -> bool:
    """True in a worker started by torchrun (its elastic agent sets TORCHELASTIC_RUN_ID and the ranks)."""
    return "TORCHELASTIC_RUN_ID" in os.environ and all(v in os.environ for v in TORCHRUN_VARIABLES)


def init_process_group(
    rank: int,
    world_size: int,
    local_rank: int,
    local_world_size: int,
    init_method: str = "env://",
    backend: str = "auto",
    timeout_s: float = 1800.0,
    use_cuda: bool | None = None,
    heartbeat_timeout_s: float | None = None,
) -> str:
    """Join the job as ``rank`` of ``world_size``; returns the backend used.

    Sets this process's CUDA device (``local_rank``) when ``use_cuda``, its CPU threads to
    ``cores // local_world_size``, the RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE variables (so
    that the queries below and the loggers agree under either launcher), a collective timeout of
    ``timeout_s`` (DIST_TIMEOUT), and, for several processes, the heartbeat watchdog that ends
    this process with a message naming a lost rank within ``heartbeat_timeout_s`` (default:
    min(timeout_s, 60)).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a job of {world_size} processes")
    if not 0 <= local_rank < local_world_size:
        raise ValueError(f"local rank {local_rank} is outside {local_world_size} processes per machine")
    if timeout_s <= 0:
        raise ValueError(f"DIST_TIMEOUT must be > 0 seconds, got {timeout_s}")
    use_cuda = torch.cuda.is_available() if use_cuda is None else use_cuda
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(local_rank),
                      LOCAL_WORLD_SIZE=str(local_world_size))
    torch.set_num_threads(threads_per_process(local_world_size))
    name = resolve_backend(backend, use_cuda)
    kwargs: dict[str, Any] = {}
    if use_cuda:
        torch.cuda.set_device(local_rank)
        if name == "nccl":
            kwargs["device_id"] = torch.device("cuda", local_rank)
    dist.init_process_group(name, init_method=init_method, rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    if world_size > 1:
        from vov3d.engine.distributed.watchdog import start_watchdog

        global _diagnosis_group
        # a gloo group of its own (NCCL has no monitored_barrier): names the ranks a timed-out collective waited for
        _diagnosis_group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout_s))
        start_watchdog(rank, world_size, min(timeout_s, 60.0) if heartbeat_timeout_s is None else heartbeat_timeout_s)
    return name


def init_from_env(
    backend: str = "auto",
    timeout_s: float = 1800.0,
    use_cuda: bool | None = None,
    heartbeat_timeout_s: float | None = None,
) -> str:
    """Join the job torchrun started (ranks and rendezvous from its environment); returns the backend."""
    missing = [v for v in TORCHRUN_VARIABLES if v not in os.environ]
    if missing:
        raise RuntimeError(f"not started by torchrun: {', '.join(missing)} not set in the environment")
    if (int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", 0)) > 0
            and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"):
        # the shared store keeps the last round's keys: a restarted job then fails to connect
        # (pytorch/pytorch#135712, #108158; seen here with one machine too, once the engine's groups exist)
        logger.warning("torchrun --max-restarts: set TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 "
                       "in torchrun's environment, or a restarted job cannot connect (the rendezvous store keeps "
                       "the previous round's addresses)")
    return init_process_group(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]),
        int(os.environ["LOCAL_WORLD_SIZE"]), "env://", backend, timeout_s, use_cuda, heartbeat_timeout_s,
    )


def is_initialized() -> bool:
    """True once this process joined a process group."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's global rank (0 alone)."""
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    """The number of processes of the job (1 alone)."""
    return dist.get_world_size() if is_initialized() else 1


def get_local_rank() -> int:
    """This process's rank on its machine (LOCAL_RANK; 0 alone)."""
    return int(os.environ.get("LOCAL_RANK", 0)) if is_initialized() else 0


def get_local_world_size() -> int:
    """The number of processes on this machine (LOCAL_WORLD_SIZE; 1 alone)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", 1)) if is_initialized() else 1


def is_main_process() -> bool:
    """True on global rank 0, the one process that writes checkpoints, logs and plots."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every process (a no-op alone)."""
    if get_world_size() > 1:
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over the processes, in place and returned (unchanged alone)."""
    world = get_world_size()
    if world > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor.div_(world)
    return tensor


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over the processes, in place and returned (unchanged alone)."""
    if get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_object(obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order (``[obj]`` alone)."""
    world = get_world_size()
    if world == 1:
        return [obj]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, obj)
    return gathered


def find_unresponsive_ranks(timeout_s: float) -> list[int] | None:
    """After a timed-out collective: the ranks that do not reach a barrier within ``timeout_s``.

    torch's ``monitored_barrier`` on a gloo group of its own: rank 0 names every rank that did not
    arrive; other ranks learn only about rank 0. Returns [] if all arrived, None if it cannot tell.
    """
    if _diagnosis_group is None:
        return None
    try:
        dist.monitored_barrier(group=_diagnosis_group, timeout=datetime.timedelta(seconds=timeout_s),
                               wait_all_ranks=True)
    except RuntimeError as err:
        import re

        text = str(err)
        found = re.search(r"[Rr]anks? ([\d, ]+) failed to pass monitoredBarrier", text)
        if found:
            return sorted({int(r) for r in re.findall(r"\d+", found.group(1))})
        if get_rank() != 0:
            return [0]
        return None
    return []


def cleanup() -> None:
    """Leave the job after a normal end: every rank finishes, stops its watchdog, then the group goes.

    The two barriers keep a rank that hosts the store (rank 0 under the tcp:// init) from leaving
    while another's watchdog still polls it. After a failure, do not call this: exit instead.
    """
    if not is_initialized():
        return
    from vov3d.engine.distributed.watchdog import stop_watchdog

    barrier()
    global _diagnosis_group
    stop_watchdog()
    barrier()
    dist.destroy_process_group()
    _diagnosis_group = None
