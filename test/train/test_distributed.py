"""Process/device helpers and the deterministic, rank-aware shuffling sampler."""
from __future__ import annotations

import pytest
import torch

from maskspec.train.distributed import (DistributedShuffleSampler, all_gather_object, all_reduce_sum,
                                        init_distributed, select_device, shard_indices)


def test_single_process_without_torchrun_env(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, info.is_main, info.distributed) == (0, 1, True, False)
    assert info.device == torch.device("cpu")
    t = torch.ones(2)
    assert torch.equal(all_reduce_sum(t), torch.ones(2)) and all_gather_object("x") == ["x"]


def test_device_choice():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="--device"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")


def test_bad_env_is_an_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        init_distributed("cpu")


@pytest.mark.parametrize("n, world, drop_last", [(10, 3, False), (10, 3, True), (8, 2, True), (5, 4, False)])
def test_shards_are_disjoint_equal_and_cover(n, world, drop_last):
    shards = []
    for rank in range(world):
        s = DistributedShuffleSampler(n, seed=7, rank=rank, world_size=world, drop_last=drop_last)
        s.set_epoch(2)
        shards.append(list(s))
        assert len(shards[-1]) == len(s)
    assert len({len(x) for x in shards}) == 1
    flat = [i for x in shards for i in x]
    if drop_last:
        assert len(set(flat)) == len(flat) == n - n % world
    else:
        assert set(flat) == set(range(n)) and len(flat) == -(-n // world) * world


def test_order_depends_only_on_seed_and_epoch():
    a, b = DistributedShuffleSampler(50, seed=1), DistributedShuffleSampler(50, seed=1)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b) == list(a)  # repeatable
    b.set_epoch(4)
    assert list(a) != list(b)
    assert list(DistributedShuffleSampler(50, seed=2)) != list(DistributedShuffleSampler(50, seed=1))
    assert list(DistributedShuffleSampler(6, shuffle=False)) == list(range(6))


def test_validation_shards():
    assert shard_indices(7, 0, 3) == [0, 3, 6] and shard_indices(7, 2, 3) == [2, 5]
    assert sorted(sum((shard_indices(7, r, 3) for r in range(3)), [])) == list(range(7))
