"""Random draws with an optional ``torch.Generator``, delivered on any device.

A generator belongs to one device, and torch draws only there. Drawing on the generator's device and moving
the result lets one CPU generator (the same masks and augmentations on every machine) serve tensors on CUDA.
Without a generator the draw happens on ``device`` from the global RNG.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

Device = torch.device | str


def _source(generator: Optional[torch.Generator], device: Device) -> torch.device:
    return generator.device if generator is not None else torch.device(device)


def rand(shape: Sequence[int], generator: Optional[torch.Generator], device: Device) -> torch.Tensor:
    """Uniform [0, 1) float32 noise of ``shape`` on ``device``."""
    return torch.rand(tuple(shape), generator=generator, device=_source(generator, device)).to(device)


def randint(low: int, high: int, shape: Sequence[int], generator: Optional[torch.Generator],
            device: Device) -> torch.Tensor:
    """int64 integers uniform in [low, high) of ``shape`` on ``device``."""
    return torch.randint(low, high, tuple(shape), generator=generator,
                         device=_source(generator, device)).to(device)


def randperm(n: int, generator: Optional[torch.Generator], device: Device) -> torch.Tensor:
    """A random permutation of 0..n-1 (int64) on ``device``."""
    return torch.randperm(n, generator=generator, device=_source(generator, device)).to(device)
