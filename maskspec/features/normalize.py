"""Feature standardisation: ``stats.json`` (written by ``maskspec.bin.compute_stats``) read and checked once, and
the ``normalize`` every reader of features uses (training data sets, scoring, inference, embeddings, HEAR), so
they all standardise the same way.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import numpy as np
import torch

from maskspec.utils.jsonfile import read_json

NORMALIZE_MODES = ("per_bin", "global", "none")
STATS_KEYS = ("mean", "std", "global_mean", "global_std")
# A mel bin that never varies (e.g. above the band edge of low-rate audio) must not blow up to +-1e8.
STD_FLOOR = 1e-5


class StatsError(ValueError):
    """A stats.json that cannot be used; the message names the file."""


def load_stats(path: str | os.PathLike) -> dict:
    """Read ``stats.json`` (written by compute_stats) and check it.

    Returns the JSON dict (``mean``/``std`` as lists of F floats, ``global_mean``/``global_std`` floats, plus
    ``num_utts``/``num_frames`` when present), i.e. something that can be stored in checkpoints and model files.
    """
    path = os.fspath(path)
    stats = read_json(path, "stats", " (run maskspec.bin.compute_stats)", StatsError)
    check_stats(stats, path)
    return stats


def check_stats(stats: Any, where: str = "stats") -> None:
    """Raise StatsError (naming ``where``) unless ``stats`` has the keys and shapes ``normalize`` needs."""
    if not isinstance(stats, Mapping):
        raise StatsError(f"{where}: expected a JSON object, got {type(stats).__name__}")
    missing = [k for k in STATS_KEYS if k not in stats]
    if missing:
        raise StatsError(f"{where}: missing {', '.join(missing)}")
    mean, std = np.asarray(stats["mean"], dtype=np.float64), np.asarray(stats["std"], dtype=np.float64)
    if mean.ndim != 1 or mean.shape != std.shape or mean.size == 0:
        raise StatsError(f"{where}: mean and std must be lists of the same non-zero length, got shapes "
                         f"{mean.shape} and {std.shape}")
    values = np.concatenate([mean, std, [stats["global_mean"], stats["global_std"]]]).astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise StatsError(f"{where}: non-finite values in mean/std")
    if np.any(std < 0) or stats["global_std"] < 0:
        raise StatsError(f"{where}: negative standard deviation")


def normalization(stats: Optional[Mapping[str, Any]], mode: str) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``(mean, std)`` that ``normalize`` uses: [F] (per_bin), [1] (global) or 0 and 1 (none); std
    floored at STD_FLOOR."""
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"normalize mode must be one of {NORMALIZE_MODES}, got {mode!r}")
    if mode == "none":
        return np.zeros(1, np.float32), np.ones(1, np.float32)
    if stats is None:
        raise ValueError(f"normalize mode {mode!r} needs stats (stats.json)")
    if mode == "per_bin":
        mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    else:
        mean, std = np.float32([stats["global_mean"]]), np.float32([stats["global_std"]])
    return mean, np.maximum(std, np.float32(STD_FLOOR))


def normalize(feats, stats: Optional[Mapping[str, Any]], mode: str):
    """Standardise log-mel features ``[T, F]`` (or ``[B, T, F]``); numpy arrays or torch tensors.

    mode ``per_bin``: ``(x - mean[F]) / std[F]`` (the paper); ``global``: one mean/std for every bin (AST);
    ``none``: unchanged. std is floored at 1e-5.
    """
    if mode == "none":
        return feats
    mean, std = normalization(stats, mode)
    if mode == "per_bin" and feats.shape[-1] != mean.shape[0]:
        raise ValueError(f"features have {feats.shape[-1]} mel bins but the stats have {mean.shape[0]}")
    if isinstance(feats, torch.Tensor):
        mean = torch.as_tensor(mean, device=feats.device, dtype=feats.dtype)
        std = torch.as_tensor(std, device=feats.device, dtype=feats.dtype)
    return (feats - mean) / std
