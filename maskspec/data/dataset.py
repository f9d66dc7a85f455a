"""Feature datasets: read ``feats.scp``, normalise (``maskspec.features.normalize``), crop or pad to a fixed
number of frames, optional labels.

Random crops are a pure function of ``(seed, epoch, index)``: the same item gets the same crop whichever
DataLoader worker reads it and however often the run was interrupted, which is what makes resume exact.
Call ``set_epoch(epoch)`` before creating the DataLoader iterator of that epoch (workers get a copy of the
dataset when the iterator starts).
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from maskspec.data.datadir import DataDirError, read_classes, read_scp
from maskspec.data.feats import load_feat
from maskspec.data.labels import read_labels
from maskspec.features.normalize import NORMALIZE_MODES, check_stats, normalize

CROP_MODES = ("random", "start", "none")


def crop_or_pad(feats: np.ndarray, num_frames: Optional[int], crop: str, rng: Optional[np.random.Generator] = None):
    """Cut or zero-pad ``[T, F]`` to ``[num_frames, F]``; returns ``(feats, valid_frames)``.

    ``random`` takes a uniformly random window (needs ``rng``), ``start`` the first ``num_frames``; ``none`` or
    ``num_frames`` None returns the clip unchanged. Zero padding goes after the clip (0 = the normalised mean).
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
    t = feats.shape[0]
    if crop == "none" or not num_frames:
        return feats, t
    if t > num_frames:
        offset = int(rng.integers(0, t - num_frames + 1)) if crop == "random" else 0
        return feats[offset: offset + num_frames], num_frames
    if t < num_frames:
        padded = np.zeros((num_frames, feats.shape[1]), dtype=feats.dtype)
        padded[:t] = feats
        return padded, t
    return feats, t


class FeatDataset(torch.utils.data.Dataset):
    """Items of a data directory with ``feats.scp``.

    Each item is ``dict(utt=str, feats=float32 tensor [T, F], num_frames=int (frames before padding),
    index=int)`` plus ``target`` [C] (multi-hot float32) and ``known`` [C] (1 = label annotated) when
    ``with_labels``. Utterances come in feats.scp order. ``utts`` and ``specs`` are the feats.scp ids and values
    (sequences), ``labels`` the packed ``maskspec.data.labels.ClipLabels`` (None without labels): dense
    targets of the whole set are ``labels.targets()``.
    """

    def __init__(self, data_dir: str | os.PathLike, num_frames: Optional[int], stats: Optional[Mapping] = None,
                 normalize: str = "per_bin", crop: str = "random", seed: int = 0, with_labels: bool = False,
                 classes: Optional[Sequence[str]] = None):
        if normalize not in NORMALIZE_MODES:
            raise ValueError(f"normalize must be one of {NORMALIZE_MODES}, got {normalize!r}")
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
        if normalize != "none" and stats is None:
            raise ValueError(f"normalize={normalize!r} needs stats")
        if stats is not None:
            check_stats(stats)
        self.data_dir = os.fspath(data_dir)
        self.num_frames = num_frames
        self.stats, self.normalize_mode, self.crop, self.seed = stats, normalize, crop, seed
        self.epoch = 0
        feats_scp = os.path.join(self.data_dir, "feats.scp")
        # Compact tables, not lists: a forked worker that reads a Python object per clip copies it (see strings.py).
        self.utts, self.specs = read_scp(feats_scp)
        if not len(self.utts):
            raise DataDirError(f"{feats_scp}: no utterances")
        self.classes = self.labels = None
        if with_labels:
            self.classes = list(classes) if classes is not None else read_classes(self.data_dir)
            _, self.labels = read_labels(self.data_dir, self.classes, self.utts)

    def __len__(self) -> int:
        return len(self.utts)

    def set_epoch(self, epoch: int) -> None:
        """Choose the random crops of ``epoch`` (call before the epoch's DataLoader iterator starts)."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))

    def __getitem__(self, index: int) -> dict:
        utt = self.utts[index]
        feats = load_feat(self.specs[index])
        if self.stats is not None and self.normalize_mode == "per_bin" and feats.shape[1] != len(self.stats["mean"]):
            raise DataDirError(f"utterance '{utt}' ({self.specs[index]}) has {feats.shape[1]} mel bins but the "
                               f"stats have {len(self.stats['mean'])}")
        rng = self._rng(index) if self.crop == "random" else None
        if self.num_frames and feats.shape[0] > self.num_frames:  # crop first: normalise only what is kept
            feats, _ = crop_or_pad(feats, self.num_frames, self.crop, rng)
        # then pad: zeros after normalisation are the mean, so padding carries no energy
        feats, valid = crop_or_pad(normalize(feats, self.stats, self.normalize_mode), self.num_frames, self.crop)
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        if not feats.flags.writeable:  # a read-only buffer from the reader: torch tensors must own writable memory
            feats = feats.copy()
        item = dict(utt=utt, index=index, feats=torch.from_numpy(feats), num_frames=int(valid))
        if self.labels is not None:
            item["target"] = torch.from_numpy(self.labels.positive.dense_row(index))
            known = self.labels.known
            item["known"] = torch.from_numpy(known.dense_row(index) if known is not None
                                             else np.ones(self.labels.num_classes, np.float32))
        return item


def collate(items: Sequence[Mapping[str, Any]]) -> dict:
    """Batch items: ``feats`` [B, T, F] (zero-padded to the longest clip when lengths differ), ``num_frames``
    [B] long, ``index`` [B] long, ``utt`` list, ``target``/``known`` [B, C] when present."""
    if not items:
        raise ValueError("collate: empty batch")
    lengths = [it["feats"].shape[0] for it in items]
    t_max = max(lengths)
    if min(lengths) == t_max:  # the usual case (clips cropped to the model's length): one copy, no zero fill
        feats = torch.stack([it["feats"] for it in items])
    else:
        feats = items[0]["feats"].new_zeros((len(items), t_max, items[0]["feats"].shape[1]))
        for i, it in enumerate(items):
            feats[i, : lengths[i]] = it["feats"]
    batch = dict(utt=[it["utt"] for it in items], feats=feats,
                 num_frames=torch.tensor([it["num_frames"] for it in items], dtype=torch.long),
                 index=torch.tensor([it["index"] for it in items], dtype=torch.long))
    if "target" in items[0]:
        batch["target"] = torch.stack([it["target"] for it in items])
        batch["known"] = torch.stack([it["known"] for it in items])
    return batch
