"""Processes and devices: torchrun environment, DDP process group, collective helpers, the shuffling sampler.

A process started by ``torchrun`` has RANK, LOCAL_RANK and WORLD_SIZE in its environment; without them (or
with WORLD_SIZE=1) everything runs in a single process and the collective helpers are no-ops. The backend is
NCCL when the processes use CUDA and gloo on CPU.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist

from maskspec.utils.device import select_device


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(device: str = "auto", timeout_minutes: float = 30.0) -> DistInfo:
    """Read the torchrun environment, pick the device and, for WORLD_SIZE > 1, join the process group."""
    world = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    dev = select_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", init_method="env://",
                                rank=rank, world_size=world,
                                timeout=datetime.timedelta(minutes=timeout_minutes))
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, device=dev)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (a task's train_step gets the wrapper), else the model."""
    return model.module if hasattr(model, "module") else model


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over processes, in place; returns the tensor (unchanged in a single process)."""
    if is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean over processes, in place."""
    if is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= dist.get_world_size()
    return tensor


def all_gather_object(obj: Any) -> list:
    """``[obj of rank 0, obj of rank 1, ...]``; ``[obj]`` in a single process."""
    if not is_initialized():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every process."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """Every index exactly once over all ranks (``rank::world_size``); shards may differ by one (validation)."""
    return list(range(rank, n, world_size))


class DistributedShuffleSampler(torch.utils.data.Sampler):
    """This rank's share of a permutation of ``range(num_samples)`` that depends only on ``(seed, epoch)``.

    All ranks compute the same permutation and take every ``world_size``-th index from ``rank``, so the shards
    are disjoint. Every rank yields the same number of indices (DDP needs the same number of steps): with
    ``drop_last`` the tail that does not divide evenly is dropped, otherwise the permutation is padded by
    repeating its head. Iterating is deterministic, so skipping the first k indices resumes exactly.
    """

    def __init__(self, num_samples: int, seed: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 drop_last: bool = False):
        if num_samples < 1:
            raise ValueError("DistributedShuffleSampler: empty dataset")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of {world_size}")
        if drop_last and num_samples < world_size:
            raise ValueError(f"{num_samples} samples cannot be split over {world_size} processes with drop_last")
        self.num_samples, self.seed, self.rank, self.world_size = num_samples, seed, rank, world_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.epoch = 0
        if drop_last:
            self.total = num_samples - num_samples % world_size
        else:
            self.total = -(-num_samples // world_size) * world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.total // self.world_size

    def permutation(self) -> np.ndarray:
        """The full (all-rank) order of this epoch, before padding or dropping."""
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng((self.seed, self.epoch)).permutation(self.num_samples)

    def __iter__(self) -> Iterator[int]:
        order = self.permutation()
        if self.total > len(order):
            order = np.concatenate([order, np.resize(order, self.total - len(order))])
        order = order[: self.total]
        return iter(order[self.rank:: self.world_size].tolist())
