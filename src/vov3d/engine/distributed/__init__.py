"""Multi-process training and testing on torch.distributed (issue 18; spec §10, §7.3 notes, §11.15).

* process_group: joining a job (``init_process_group``, ``init_from_env`` for torchrun), queries
  (``get_rank`` ...), and the collectives the engine needs; a lone process is rank 0 of 1.
* launch: ``launch(fn, args, ...)`` runs ``fn`` in every process, under torchrun or the original's
  way (NUM_GPUS processes per machine, ``--num_shards/--shard_id/--init_method``).
* watchdog: the heartbeat that ends survivors with a message naming a lost rank.
* sync_batchnorm: ``convert_sync_batchnorm`` (BN.NORM_TYPE sync_batchnorm) with CPU support.
* bn_stats: ``average_bn_stats``, precise BN over all processes.
* ddp: ``wrap_ddp`` / ``unwrap_model``.
"""

from vov3d.engine.distributed.bn_stats import average_bn_stats
from vov3d.engine.distributed.ddp import unwrap_model, wrap_ddp
from vov3d.engine.distributed.launch import (
    WorkerFailed,
    free_tcp_init_method,
    launch,
    processes_per_machine,
    run_guarded,
)
from vov3d.engine.distributed.process_group import (
    all_gather_object,
    all_reduce_mean,
    all_reduce_sum,
    barrier,
    cleanup,
    get_local_rank,
    get_local_world_size,
    get_rank,
    get_world_size,
    init_from_env,
    init_process_group,
    is_initialized,
    is_main_process,
    resolve_backend,
    threads_per_process,
    under_torchrun,
)
from vov3d.engine.distributed.sync_batchnorm import CPUSyncBatchNorm, convert_sync_batchnorm, sync_bn_groups
from vov3d.engine.distributed.watchdog import LOST_RANK_EXIT_STATUS

__all__ = [
    "CPUSyncBatchNorm", "LOST_RANK_EXIT_STATUS", "WorkerFailed", "all_gather_object", "all_reduce_mean",
    "all_reduce_sum", "average_bn_stats", "barrier", "cleanup", "convert_sync_batchnorm", "free_tcp_init_method",
    "get_local_rank", "get_local_world_size", "get_rank", "get_world_size", "init_from_env", "init_process_group",
    "is_initialized", "is_main_process", "launch", "processes_per_machine", "resolve_backend", "run_guarded",
    "sync_bn_groups", "threads_per_process", "under_torchrun", "unwrap_model", "wrap_ddp",
]
