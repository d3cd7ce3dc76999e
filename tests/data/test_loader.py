"""The loader: deterministic for a seed, independent of workers, new streams every epoch (§11.17)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from media_files import write_kinetics, write_video
from vov3d.data import Kinetics, build_loader, count_failures, set_epoch


@pytest.fixture(scope="module")
def same_video_dataset(tmp_path_factory):
    """Six entries of one video: any difference between items comes from the random streams."""
    root = tmp_path_factory.mktemp("same")
    write_video(root / "v.mp4", num_frames=40)
    write_kinetics(root, {"train": [("v.mp4", i) for i in range(6)]})
    return root


def collect(loader, epoch):
    set_epoch(loader, epoch)
    return [(clip, label, index, meta) for clip, label, index, meta in loader]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for (ca, la, ia, ma), (cb, lb, ib, mb) in zip(a, b):
        assert torch.equal(ca, cb) and torch.equal(la, lb) and torch.equal(ia, ib)
        assert ma["path"] == mb["path"] and torch.equal(ma["failures"], mb["failures"])


def test_batches_do_not_depend_on_workers_and_change_with_the_epoch(same_video_dataset, small_params):
    ds = Kinetics(same_video_dataset, "train", small_params, seed=7)
    serial = build_loader(ds, 2, shuffle=True, drop_last=True, num_workers=0, seed=7)
    parallel = build_loader(ds, 2, shuffle=True, drop_last=True, num_workers=2, seed=7)
    persistent = build_loader(ds, 2, shuffle=True, drop_last=True, num_workers=2, seed=7, persistent_workers=True)
    runs = {}
    for name, loader in [("serial", serial), ("parallel", parallel), ("persistent", persistent)]:
        runs[name] = [collect(loader, 0), collect(loader, 1)]
    for name in ("parallel", "persistent"):
        for epoch in (0, 1):
            assert_same_batches(runs["serial"][epoch], runs[name][epoch])
    e0, e1 = runs["serial"]
    assert len(e0) == 3 and e0[0][0].shape == (2, 3, 8, 40, 40)
    assert isinstance(e0[0][3]["path"], list) and e0[0][3]["error"] == ["", ""]
    assert count_failures(e0[0][3]) == 0
    order0 = torch.cat([b[2] for b in e0]).tolist()
    order1 = torch.cat([b[2] for b in e1]).tolist()
    assert sorted(order0) == sorted(order1) == list(range(6)) and order0 != order1
    # the same index gets a different augmentation in another epoch
    clip0 = {int(i): c for b in e0 for i, c in zip(b[2], b[0])}
    clip1 = {int(i): c for b in e1 for i, c in zip(b[2], b[0])}
    assert all(not torch.equal(clip0[i], clip1[i]) for i in range(6))
    # the same video in different items (possibly different workers) gets different augmentations
    clips = list(clip0.values())
    assert all(not torch.equal(clips[i], clips[j]) for i in range(6) for j in range(i + 1, 6))
    # a different seed changes everything
    other_ds = Kinetics(same_video_dataset, "train", small_params, seed=8)
    other = collect(build_loader(other_ds, 2, shuffle=True, drop_last=True, seed=8), 0)
    assert not torch.equal(other[0][0], e0[0][0])


def test_eval_loader_keeps_order_and_the_last_batch(same_video_dataset, small_params):
    ds = Kinetics(same_video_dataset, "train", small_params)
    loader = build_loader(ds, 4, shuffle=False, drop_last=False)
    batches = collect(loader, 0)
    assert [b[2].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5]]


def test_distributed_ranks_split_the_data(same_video_dataset, small_params):
    ds = Kinetics(same_video_dataset, "train", small_params)
    seen = []
    for rank in range(2):
        loader = build_loader(ds, 1, shuffle=True, drop_last=False, distributed=True, num_replicas=2, rank=rank, seed=3)
        set_epoch(loader, 2)
        seen.append([int(item) for _, _, item, _ in loader])
    assert len(seen[0]) == len(seen[1]) == 3
    assert sorted(seen[0] + seen[1]) == list(range(6))


class GlobalRandom(Dataset):
    """Uses the global NumPy and Python generators, as third-party transforms do."""

    def __len__(self):
        return 4

    def __getitem__(self, key):
        return np.random.random(), random.random()


def test_workers_reseed_global_generators_per_worker_and_epoch():
    def draws(loader):
        return [tuple(float(v) for v in batch) for batch in loader]

    loader = build_loader(GlobalRandom(), 1, shuffle=False, drop_last=False, num_workers=2, seed=0)
    epoch0 = draws(loader)
    epoch1 = draws(loader)
    again = draws(build_loader(GlobalRandom(), 1, shuffle=False, drop_last=False, num_workers=2, seed=0))
    # workers 0 and 1 take items 0,2 and 1,3: in the original their NumPy streams were identical (§11.17)
    for generator in (0, 1):  # NumPy, Python
        first, second = [d[generator] for d in epoch0], [d[generator] for d in epoch1]
        assert first[0] != first[1] and first[2] != first[3]
        assert set(first).isdisjoint(second)
    assert epoch0 == again


def test_datasets_leave_global_generators_alone(same_video_dataset, small_params):
    state = np.random.get_state()[1].copy()
    torch_state = torch.random.get_rng_state().clone()
    ds = Kinetics(same_video_dataset, "train", small_params)
    for i in range(3):
        ds[i]
    assert np.array_equal(np.random.get_state()[1], state)
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_count_failures_of_every_collated_form():
    assert count_failures({"failures": torch.tensor([0, 2, 1])}) == 3  # the default collate
    assert count_failures({"failures": [1, 0, 4]}) == 5 and count_failures({"failures": (2, 2)}) == 4
    assert count_failures({"failures": 3}) == 3  # one item, not collated
    assert count_failures({"path": ["a"]}) == 0  # no failures key: nothing failed


class Keys(Dataset):
    """Returns the key the loader asks for: (epoch, index) from build_loader's sampler."""

    def __len__(self):
        return 6

    def __getitem__(self, key):
        return torch.tensor(key)


def test_a_new_loader_is_at_epoch_0_and_each_epoch_reshuffles():
    from vov3d.data.loader import EpochSampler

    assert list(EpochSampler(DistributedSampler(Keys(), num_replicas=1, rank=0, shuffle=False)))[:2] == [(0, 0), (0, 1)]
    loader = build_loader(Keys(), 6, shuffle=True, drop_last=False, seed=3)
    (first,) = list(loader)
    assert first[:, 0].tolist() == [0] * 6 and sorted(first[:, 1].tolist()) == list(range(6))
    set_epoch(loader, 2)
    (third,) = list(loader)
    assert third[:, 0].tolist() == [2] * 6 and third[:, 1].tolist() != first[:, 1].tolist()
    set_epoch(loader, 0)
    assert torch.equal(next(iter(loader)), first)
    orders = {seed: next(iter(build_loader(Keys(), 6, shuffle=True, drop_last=False, seed=seed)))[:, 1].tolist()
              for seed in (0, 3)}
    assert orders[3] == first[:, 1].tolist() and orders[0] != orders[3]


def test_an_uneven_split_over_ranks_repeats_items_rather_than_dropping_any():
    class Five(Keys):
        def __len__(self):
            return 5

    seen = [[int(batch[0, 1]) for batch in build_loader(Five(), 1, shuffle=False, drop_last=False, distributed=True,
                                                        num_replicas=2, rank=rank)]
            for rank in range(2)]
    assert len(seen[0]) == len(seen[1]) == 3 and set(seen[0] + seen[1]) == set(range(5))


def test_set_epoch_reaches_the_sampler_and_dataset_of_a_loader_built_elsewhere():
    class KeepsEpoch(Keys):
        epoch = None

        def set_epoch(self, epoch):
            self.epoch = epoch

    dataset = KeepsEpoch()
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0)
    set_epoch(DataLoader(dataset, sampler=sampler), 5)
    assert sampler.epoch == 5 and dataset.epoch == 5


def test_build_loader_passes_its_options_to_the_data_loader():
    def collate(items):
        return items

    default = build_loader(Keys(), 2, shuffle=False, drop_last=False)
    assert (default.num_workers, default.pin_memory, default.persistent_workers) == (0, False, False)
    assert len(list(default)) == 3
    loader = build_loader(Keys(), 4, shuffle=False, drop_last=True, num_workers=1, persistent_workers=True,
                          prefetch_factor=3, collate_fn=collate, pin_memory=True)
    assert (loader.num_workers, loader.persistent_workers, loader.prefetch_factor) == (1, True, 3)
    assert loader.collate_fn is collate and loader.pin_memory and loader.drop_last
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        build_loader(Keys(), 0, shuffle=False, drop_last=False)
