"""Class-balanced sampling for imbalanced multi-label training sets (AudioSet-2M).

The weight of a clip is the sum over its positive labels of ``1000 / (100 + count(label))``, where the counts come
from the user's own training directory (the paper's formula; rare classes get drawn more often, the +100 stops
a class with a handful of clips from dominating). Each epoch draws a fixed number of clips with replacement.

``WeightedDistributedSampler`` draws one sequence per (seed, epoch), identical on every rank, and gives rank r
the positions r, r + W, r + 2W, ...: the ranks see different parts of the draw (the published code drew the same
clips on every GPU).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from maskspec.data.labels import LabelIndex

CLASS_WEIGHT_NUMERATOR = 1000.0
CLASS_COUNT_OFFSET = 100.0


def class_balanced_weights(targets) -> np.ndarray:
    """Per-clip weights ``[N]`` from the positive labels: a ``LabelIndex`` (or ``ClipLabels``, whose
    ``positive`` it takes), or multi-hot targets ``[N, C]``.

    A clip without any positive label gets weight 0 (it is never drawn); float64 throughout. The sums run over
    dense [4096, C] blocks, so the weights are bit for bit those of the whole [N, C] product (the same BLAS
    dot product per row) without ever holding it.
    """
    labels = getattr(targets, "positive", targets)
    if not isinstance(labels, LabelIndex):
        t = np.asarray(targets)
        if t.ndim != 2:
            raise ValueError(f"class_balanced_weights: targets must be [N, C], got shape {t.shape}")
        labels = LabelIndex.from_dense(t)
    class_weight = CLASS_WEIGHT_NUMERATOR / (CLASS_COUNT_OFFSET + labels.class_counts().astype(np.float64))
    if not len(labels):
        return np.zeros(0, np.float64)
    return np.concatenate([block @ class_weight for block in labels.blocks(np.float64)])


class WeightedDistributedSampler:
    """Indices drawn with replacement with probability proportional to ``weights``, split over DDP ranks.

    Args:
        weights: [N] non-negative, at least one positive.
        num_samples: clips drawn per epoch over all ranks (rounded up to a multiple of world_size).
        rank, world_size: this process and the number of processes.
        seed: with the epoch, fixes the draw; every rank must use the same seed.
    """

    def __init__(self, weights, num_samples: int, rank: int = 0, world_size: int = 1, seed: int = 0):
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"WeightedDistributedSampler: weights must be a non-empty [N] array, got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("WeightedDistributedSampler: weights must be finite, >= 0 and not all 0")
        if num_samples <= 0:
            raise ValueError(f"WeightedDistributedSampler: num_samples must be positive, got {num_samples}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"WeightedDistributedSampler: bad rank {rank} for world_size {world_size}")
        self.p = w / w.sum()
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.total = -(-num_samples // world_size) * world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_draw(self) -> np.ndarray:
        """The whole epoch's draw ``[total]`` (the same on every rank)."""
        rng = np.random.default_rng((self.seed, self.epoch))
        return rng.choice(len(self.p), size=self.total, replace=True, p=self.p)

    def __iter__(self) -> Iterator[int]:
        # one Python int at a time: a list of the epoch's draw would be ~36 bytes per index
        return map(int, self.global_draw()[self.rank::self.world_size])

    def __len__(self) -> int:
        return self.total // self.world_size
