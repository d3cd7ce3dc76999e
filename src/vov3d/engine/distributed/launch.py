"""Start a job's processes, the original's way or under torchrun (issue 18; spec §10).

``launch(fn, args, ...)`` runs ``fn(*args)`` in every process of the job:

* under torchrun (its environment is set): in this process, after joining the group torchrun's
  rendezvous describes; torchrun's elastic agent starts, restarts and stops the workers;
* one process in all (``num_processes * num_shards == 1``): in this process, with no group;
* otherwise, the original's way: ``num_processes`` processes on this machine, started with
  ``torch.multiprocessing.start_processes`` (spawn), global rank = ``shard_id * num_processes +
  local rank``, joining through ``init_method`` (``tcp://HOST:PORT`` or ``file://PATH``; required
  with several shards, a free local port otherwise). With one process per machine and several
  shards, the process joins itself.

Faults: a local worker that dies makes the parent end the others and raise :class:`WorkerFailed`
naming its global rank; a rank lost on another machine is named by the heartbeat watchdog
(watchdog.py), which ends the survivors with exit status 3; a rank that hangs is bounded by the
collective timeout ``timeout_s`` (DIST_TIMEOUT).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from typing import Any, Callable, Sequence

import torch
import torch.multiprocessing as mp

from vov3d.engine.distributed import process_group as pg
from vov3d.engine.distributed.watchdog import LOST_RANK_EXIT_STATUS, current_watchdog

logger = logging.getLogger(__name__)


class WorkerFailed(RuntimeError):
    """A process of the job failed; ``rank`` is its global rank, ``exit_code`` its status (or None)."""

    def __init__(self, message: str, rank: int, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.rank = rank
        self.exit_code = exit_code


def processes_per_machine(num_gpus: int, cuda_available: bool | None = None) -> tuple[int, bool]:
    """NUM_GPUS -> (processes on this machine, whether they use CUDA), as the original spawns them.

    0: one CPU process; N with CUDA: N processes, one GPU each (more than present is an error naming
    NUM_GPUS); N without CUDA: N CPU processes (gloo), with a warning.
    """
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 0:
        raise ValueError(f"NUM_GPUS must be an int >= 0, got {num_gpus!r}")
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if num_gpus == 0:
        return 1, False
    if not cuda:
        logger.warning("NUM_GPUS %d but no CUDA GPU: running %d CPU processes (gloo)", num_gpus, num_gpus)
        return num_gpus, False
    present = torch.cuda.device_count()
    if num_gpus > present:
        raise ValueError(f"NUM_GPUS is {num_gpus} but {present} CUDA GPU(s) are present; set NUM_GPUS to at most "
                         f"{present}")
    return num_gpus, True


def free_tcp_init_method(host: str = "127.0.0.1") -> str:
    """``tcp://host:PORT`` with a port free right now (for a job of one machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return f"tcp://{host}:{s.getsockname()[1]}"


def is_communication_error(err: BaseException) -> bool:
    """True for what a lost or hung peer raises in a collective (gloo/NCCL errors, timeouts)."""
    if isinstance(err, torch.distributed.DistError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and any(
        mark in text for mark in ("gloo", "Gloo", "NCCL", "Connection reset", "Connection closed", "Timed out")
    )


def run_guarded(fn: Callable[..., Any], args: Sequence[Any]) -> Any:
    """``fn(*args)`` in a process of the job; on a communication error, let the watchdog name the lost rank.

    The watchdog ends the process itself (exit status 3) once it sees a peer's heartbeat stop, so a
    survivor whose collective failed waits here at most the watchdog's bound; if no rank was lost
    (a hang ended by the collective timeout), the original error is raised with that said.
    """
    try:
        return fn(*args)
    except Exception as err:
        watchdog = current_watchdog()
        if watchdog is None or not is_communication_error(err):
            raise
        logger.error("rank %d: a collective failed (%s); checking which rank was lost", pg.get_rank(),
                     str(err).splitlines()[0])
        watchdog.wait(watchdog.lost_after_s + 3 * watchdog.interval_s)  # it ends the process if it names a rank
        hung = pg.find_unresponsive_ranks(min(watchdog.lost_after_s, 30.0))
        named = (f"rank(s) {', '.join(map(str, hung))} did not answer" if hung else
                 "every rank answered" if hung == [] else "the unresponsive rank could not be told")
        raise RuntimeError(
            f"rank {pg.get_rank()}: a collective failed while every watched rank kept its heartbeat "
            f"(a rank hangs, or the network failed; DIST_TIMEOUT bounds the wait); {named}: {err}"
        ) from err


def _worker(
    local_rank: int,
    fn: Callable[..., Any],
    args: Sequence[Any],
    num_processes: int,
    num_shards: int,
    shard_id: int,
    init_method: str,
    backend: str,
    timeout_s: float,
    use_cuda: bool | None,
    heartbeat_timeout_s: float | None,
) -> None:
    """One spawned process: join as rank ``shard_id * num_processes + local_rank``, run, leave."""
    rank = shard_id * num_processes + local_rank
    pg.init_process_group(rank, num_processes * num_shards, local_rank, num_processes, init_method, backend,
                          timeout_s, use_cuda, heartbeat_timeout_s)
    run_guarded(fn, args)
    pg.cleanup()


def launch(
    fn: Callable[..., Any],
    args: Sequence[Any] = (),
    *,
    num_processes: int = 1,
    num_shards: int = 1,
    shard_id: int = 0,
    init_method: str | None = None,
    backend: str = "auto",
    timeout_s: float = 1800.0,
    use_cuda: bool | None = None,
    heartbeat_timeout_s: float | None = None,
) -> Any:
    """Run ``fn(*args)`` in every process of the job (see the module doc); ``fn`` must be picklable.

    Returns ``fn``'s result when it ran in this process (torchrun, or one process in all), else None.
    Raises :class:`WorkerFailed` naming the global rank of the first local worker that failed
    (the others are ended first), ``ValueError`` for inconsistent arguments (naming the flag/key).
    """
    if pg.under_torchrun():
        if num_processes > 1 and str(num_processes) != os.environ.get("LOCAL_WORLD_SIZE"):
            logger.warning("under torchrun the processes per machine are torchrun's (--nproc-per-node %s); "
                           "NUM_GPUS %d does not start more", os.environ.get("LOCAL_WORLD_SIZE"), num_processes)
        pg.init_from_env(backend, timeout_s, use_cuda, heartbeat_timeout_s)
        result = run_guarded(fn, args)
        pg.cleanup()
        return result
    if num_processes < 1:
        raise ValueError(f"num_processes (processes per machine, NUM_GPUS) must be >= 1, got {num_processes}")
    if num_shards < 1:
        raise ValueError(f"--num_shards (NUM_SHARDS) must be >= 1, got {num_shards}")
    if not 0 <= shard_id < num_shards:
        raise ValueError(f"--shard_id (SHARD_ID) must be in [0, {num_shards}), got {shard_id}")
    if num_processes * num_shards == 1:
        return fn(*args)
    if init_method is None:
        if num_shards > 1:
            raise ValueError(f"--num_shards {num_shards} needs --init_method tcp://HOST:PORT (of shard 0's "
                             "machine) or file://PATH (on a file system all machines share)")
        init_method = free_tcp_init_method()
    if not init_method.startswith(("tcp://", "file://", "env://")):
        raise ValueError(f"--init_method must be tcp://HOST:PORT or file://PATH, got {init_method!r}")
    worker_args = (fn, tuple(args), num_processes, num_shards, shard_id, init_method, backend, timeout_s,
                   use_cuda, heartbeat_timeout_s)
    if num_processes == 1:  # one process on this machine: join in place (no child to watch)
        _worker(0, *worker_args)
        return None
    context = mp.start_processes(_worker, args=worker_args, nprocs=num_processes, join=False, start_method="spawn")
    try:
        while not context.join():
            pass
    except mp.ProcessExitedException as err:
        rank = shard_id * num_processes + err.error_index
        if err.exit_code < 0:
            how = f"was killed by signal {signal.Signals(-err.exit_code).name}"
        elif err.exit_code == LOST_RANK_EXIT_STATUS:
            how = f"exited with status {err.exit_code} because it lost another rank (its message above names it)"
        else:
            how = f"exited with status {err.exit_code}"
        raise WorkerFailed(f"rank {rank} (process {err.error_index} of shard {shard_id}) {how}; the job's other "
                           "processes on this machine were ended", rank, err.exit_code) from None
    except mp.ProcessRaisedException as err:
        rank = shard_id * num_processes + err.error_index
        raise WorkerFailed(f"rank {rank} (process {err.error_index} of shard {shard_id}) raised an error; the job's "
                           f"other processes on this machine were ended:\n{err}", rank, 1) from None
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
        for process in context.processes:  # a job that lost a rank cannot checkpoint: a short grace only
            process.join(3)
            if process.is_alive():
                process.kill()
                process.join()
    return None
