"""Mean and standard deviation of features over a training set, for input normalisation.

Two normalisations are in use: per mel bin (the MaskSpec paper) and one global mean/std (AST and its successors);
``stats.json`` holds both. Accumulation is float64 and merges per-utterance moments (Chan et al.'s pairwise
update), so a long list of utterances with large means loses no precision to cancellation.
"""
from __future__ import annotations

import os
import random

import numpy as np

from maskspec.data.datadir import DataDirError, read_kv
from maskspec.data.feats import load_feat
from maskspec.utils.atomic import atomic_open


class MomentAccumulator:
    """Running count, mean and sum of squared deviations of ``[T, F]`` matrices, per column and overall."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None  # [F]
        self.m2: np.ndarray | None = None  # [F]
        self.g_mean = 0.0
        self.g_m2 = 0.0

    def add(self, mat: np.ndarray) -> None:
        """Add the frames of one ``[T, F]`` matrix."""
        x = np.asarray(mat, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"expected a non-empty [frames, mel] matrix, got shape {x.shape}")
        if self.mean is not None and x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"feature dimension {x.shape[1]} differs from earlier utterances ({self.mean.shape[0]})")
        n_b = x.shape[0]
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        g_mean_b = x.mean()
        g_m2_b = float(((x - g_mean_b) ** 2).sum())
        if self.mean is None:
            self.n, self.mean, self.m2, self.g_mean, self.g_m2 = n_b, mean_b, m2_b, float(g_mean_b), g_m2_b
            return
        n = self.n + n_b
        dim = x.shape[1]
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / n
        self.m2 = self.m2 + m2_b + delta**2 * self.n * n_b / n
        g_delta = g_mean_b - self.g_mean
        # the global moments count every value: frames times bins
        na, nb = self.n * dim, n_b * dim
        self.g_mean = self.g_mean + g_delta * nb / (na + nb)
        self.g_m2 = self.g_m2 + g_m2_b + g_delta**2 * na * nb / (na + nb)
        self.n = n

    def result(self) -> dict:
        """``{num_frames, mean [F], std [F], global_mean, global_std}`` (population std)."""
        if self.mean is None:
            raise ValueError("no frames were accumulated")
        dim = self.mean.shape[0]
        return {
            "num_frames": int(self.n),
            "mean": self.mean.tolist(),
            "std": np.sqrt(self.m2 / self.n).tolist(),
            "global_mean": float(self.g_mean),
            "global_std": float(np.sqrt(self.g_m2 / (self.n * dim))),
        }


def compute_stats(feats_scp: str | os.PathLike, max_utts: int | None = None, seed: int = 0) -> dict:
    """Statistics of the features listed in ``feats_scp``; with ``max_utts``, of a random subset of that size.

    The subset is drawn with ``random.Random(seed)`` and read in scp order. Returns
    ``{num_utts, num_frames, mean, std, global_mean, global_std}``.
    """
    feats = read_kv(feats_scp)
    if not feats:
        raise DataDirError(f"{feats_scp}: no utterances")
    utts = list(feats)
    if max_utts is not None and max_utts < len(utts):
        if max_utts <= 0:
            raise ValueError(f"max_utts must be positive, got {max_utts}")
        chosen = set(random.Random(seed).sample(utts, max_utts))
        utts = [u for u in utts if u in chosen]
    acc = MomentAccumulator()
    for utt in utts:
        try:
            acc.add(load_feat(feats[utt]))
        except ValueError as e:
            raise DataDirError(f"{feats_scp}: utterance '{utt}': {e}") from e
    return {"num_utts": len(utts), **acc.result()}


def write_stats(stats: dict, path: str | os.PathLike) -> None:
    """Write ``stats`` as JSON, atomically."""
    import json

    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
        f.write("\n")
