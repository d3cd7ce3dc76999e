"""engine.distributed in one process: argument checks, group layouts, the lone-process behaviour."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vov3d.engine import distributed as D


def test_backend_follows_the_device_and_nccl_falls_back_to_gloo_on_cpu():
    assert D.resolve_backend("auto", use_cuda=False) == "gloo"
    assert D.resolve_backend("auto", use_cuda=True) == "nccl"
    assert D.resolve_backend("NCCL", use_cuda=False) == "gloo"  # the original's default on a CPU machine
    assert D.resolve_backend("gloo", use_cuda=True) == "gloo"
    with pytest.raises(ValueError, match="DIST_BACKEND.*mpi"):
        D.resolve_backend("mpi", use_cuda=False)


def test_cpu_threads_are_shared_not_oversubscribed():
    assert D.threads_per_process(2, cores=2) == 1
    assert D.threads_per_process(3, cores=16) == 5
    assert D.threads_per_process(8, cores=2) == 1
    assert D.threads_per_process(1, cores=12) == 12
    with pytest.raises(ValueError):
        D.threads_per_process(0, cores=2)


def test_sync_bn_groups_are_consecutive_local_ranks_of_each_machine():
    # 2 machines x 4 processes, groups of 2 (the original's NUM_SYNC_DEVICES blocks of one machine)
    assert D.sync_bn_groups(8, 4, 2, False) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert D.sync_bn_groups(8, 4, 4, False) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert D.sync_bn_groups(8, 4, 1, False) == [[i] for i in range(8)]
    assert D.sync_bn_groups(8, 4, 3, True) == [list(range(8))]  # GLOBAL_SYNC ignores the group size


@pytest.mark.parametrize("world, local, devices", [(8, 8, 3), (2, 2, 4), (1, 1, 4), (12, 6, 4)])
def test_a_group_size_that_does_not_divide_the_local_processes_is_a_clear_error(world, local, devices):
    with pytest.raises(ValueError) as err:
        D.sync_bn_groups(world, local, devices, False)
    message = str(err.value)
    assert f"BN.NUM_SYNC_DEVICES {devices}" in message and f"{local} process(es) per machine" in message
    assert "§11.15" in message


def test_convert_checks_the_group_size_before_touching_the_model():
    model = nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4))
    with pytest.raises(ValueError, match=r"BN.NUM_SYNC_DEVICES 4 does not divide the 1 process"):
        D.convert_sync_batchnorm(model, 4, global_sync=False)  # spec §11.15: one process, groups of 4
    assert type(model[1]) is nn.BatchNorm3d


def test_converted_model_alone_is_plain_batchnorm_with_the_same_state_dict():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4), nn.ReLU())
    synced = D.convert_sync_batchnorm(nn.Sequential(nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4), nn.ReLU()), 1)
    synced.load_state_dict(plain.state_dict())
    assert type(synced[1]) is D.CPUSyncBatchNorm and set(synced.state_dict()) == set(plain.state_dict())
    x = torch.randn(2, 3, 4, 6, 6)
    torch.testing.assert_close(synced(x), plain(x))
    torch.testing.assert_close(synced[1].running_var, plain[1].running_var)


def test_a_lone_process_is_rank_0_of_1_and_collectives_are_identities():
    assert (D.get_rank(), D.get_world_size(), D.get_local_rank(), D.get_local_world_size()) == (0, 1, 0, 1)
    assert D.is_main_process() and not D.is_initialized() and not D.under_torchrun()
    t = torch.tensor([3.0])
    assert D.all_reduce_mean(t) is t and float(t) == 3.0
    assert D.all_gather_object({"a": 1}) == [{"a": 1}]
    D.barrier()
    D.cleanup()
    model = nn.BatchNorm1d(2)
    assert D.average_bn_stats(model, num_samples=4) == 0 and D.wrap_ddp(model, torch.device("cpu")) is model


def test_launch_of_one_process_runs_in_place_and_returns_the_result():
    assert D.launch(divmod, (7, 2), num_processes=1) == (3, 1)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_processes": 1, "num_shards": 2, "shard_id": 0}, "--num_shards 2 needs --init_method"),
    ({"num_processes": 0}, "NUM_GPUS"),
    ({"num_processes": 1, "num_shards": 2, "shard_id": 2, "init_method": "tcp://127.0.0.1:1"}, "--shard_id"),
    ({"num_processes": 2, "init_method": "127.0.0.1:1234"}, "--init_method must be tcp://"),
])
def test_launch_argument_mistakes_name_the_flag(kwargs, match):
    with pytest.raises(ValueError, match=match):
        D.launch(print, (), **kwargs)


def test_num_gpus_gives_the_processes_per_machine_as_the_original():
    assert D.processes_per_machine(0, cuda_available=False) == (1, False)
    assert D.processes_per_machine(0, cuda_available=True) == (1, False)
    assert D.processes_per_machine(2, cuda_available=False) == (2, False)  # CPU processes with gloo
    with pytest.raises(ValueError, match="NUM_GPUS"):
        D.processes_per_machine(-1)
    if not torch.cuda.is_available():
        return
    present = torch.cuda.device_count()
    assert D.processes_per_machine(present) == (present, True)
    with pytest.raises(ValueError, match=f"NUM_GPUS is {present + 1}"):
        D.processes_per_machine(present + 1)
