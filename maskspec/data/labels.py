"""Clip labels as packed class indices: what ``utt2label`` (and ``utt2label_known``) hold, in numpy arrays.

A dense float32 [C] multi-hot per clip is 2 KB at AudioSet's 527 classes, ~4 GB for AS-2M, and each array is a
Python object whose reference count a forked DataLoader worker touches (and so copies). ``LabelIndex`` keeps the
positive classes of every clip in CSR form (``offsets`` int64 [N + 1], sorted ``classes`` int16/int32 [nnz]), a
few bytes per label; the dense rows are made when asked for (``dense``), a batch or a block at a time.
"""
from __future__ import annotations

import os
from array import array
from typing import Iterator, Optional, Sequence

import numpy as np

from maskspec.data.datadir import DataDirError, build_unique_keys, iter_kv, read_classes
from maskspec.data.strings import StringArray, StringArrayBuilder, take_runs

# Rows of dense blocks built at once: [4096, 527] float64 is 17 MB.
BLOCK_ROWS = 4096


class LabelIndex:
    """Sets of class indices, one per clip: clip i has ``classes[offsets[i]:offsets[i + 1]]`` (sorted, distinct).

    Shapes: ``offsets`` int64 [N + 1], ``classes`` int16 (int32 beyond 32767 classes) [nnz].
    """

    def __init__(self, offsets: np.ndarray, classes: np.ndarray, num_classes: int):
        self.offsets, self.classes, self.num_classes = offsets, classes, int(num_classes)

    @classmethod
    def from_dense(cls, dense: np.ndarray | Sequence[np.ndarray]) -> "LabelIndex":
        """From multi-hot rows ``[N, C]`` (an entry > 0.5 is a label)."""
        d = np.asarray(dense)
        if d.ndim != 2:
            raise ValueError(f"LabelIndex.from_dense: expected [N, C], got shape {d.shape}")
        rows, cols = np.nonzero(d > 0.5)
        offsets = np.zeros(d.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=d.shape[0]), out=offsets[1:])
        return cls(offsets, cols.astype(_index_dtype(d.shape[1])), d.shape[1])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, index: int) -> np.ndarray:
        """Class indices of clip ``index``."""
        return self.classes[self.offsets[index]: self.offsets[index + 1]]

    def dense_row(self, index: int, dtype=np.float32) -> np.ndarray:
        """Multi-hot ``[C]`` of clip ``index`` (what one dataset item carries)."""
        out = np.zeros(self.num_classes, dtype=dtype)
        out[self.row(index)] = 1
        return out

    def counts(self) -> np.ndarray:
        """Number of labels of each clip, int64 [N]."""
        return np.diff(self.offsets)

    def class_counts(self) -> np.ndarray:
        """Number of clips with each class, int64 [C]."""
        return np.bincount(self.classes, minlength=self.num_classes).astype(np.int64)

    def dense(self, rows: Optional[np.ndarray | Sequence[int]] = None, dtype=np.float32) -> np.ndarray:
        """Multi-hot ``[len(rows), C]`` (all clips when ``rows`` is None): 1 at each label, 0 elsewhere."""
        sub = self if rows is None else self.take(np.asarray(rows, dtype=np.int64).reshape(-1))
        out = np.zeros((len(sub), self.num_classes), dtype=dtype)
        out[np.repeat(np.arange(len(sub)), sub.counts()), sub.classes] = 1
        return out

    def blocks(self, dtype=np.float32, block_rows: int = BLOCK_ROWS) -> Iterator[np.ndarray]:
        """``dense()`` in consecutive blocks of ``block_rows`` clips, so no [N, C] array is ever made."""
        for start in range(0, len(self), block_rows):
            yield self.dense(np.arange(start, min(start + block_rows, len(self))), dtype)

    def take(self, order: np.ndarray) -> "LabelIndex":
        """The clips at positions ``order`` (int [m]), in that order."""
        offsets, where = take_runs(self.offsets, order)
        return LabelIndex(offsets, self.classes[where], self.num_classes)

    def contains(self, other: "LabelIndex") -> np.ndarray:
        """bool [nnz of other]: whether each label of ``other`` is also in this index's set of the same clip."""
        mine = np.repeat(np.arange(len(self), dtype=np.int64), self.counts()) * self.num_classes + self.classes
        theirs = np.repeat(np.arange(len(other), dtype=np.int64), other.counts()) * self.num_classes + other.classes
        return np.isin(theirs, mine)

    @property
    def nbytes(self) -> int:
        return self.offsets.nbytes + self.classes.nbytes


class ClipLabels:
    """The labels of a data directory's clips in a given order: ``positive`` and, with partial labels
    (``utt2label_known``), ``known`` (None: every label is known)."""

    def __init__(self, positive: LabelIndex, known: Optional[LabelIndex] = None):
        self.positive, self.known = positive, known
        self.num_classes = positive.num_classes

    def __len__(self) -> int:
        return len(self.positive)

    def targets(self, rows=None) -> np.ndarray:
        """float32 multi-hot targets ``[len(rows), C]`` (all clips when ``rows`` is None)."""
        return self.positive.dense(rows)

    def known_mask(self, rows=None) -> np.ndarray:
        """float32 ``[len(rows), C]``: 1 where the label is annotated (all ones without partial labels)."""
        if self.known is None:
            n = len(self) if rows is None else len(np.asarray(rows).reshape(-1))
            return np.ones((n, self.num_classes), np.float32)
        return self.known.dense(rows)

    def take(self, order: np.ndarray) -> "ClipLabels":
        return ClipLabels(self.positive.take(order), None if self.known is None else self.known.take(order))

    @property
    def nbytes(self) -> int:
        return self.positive.nbytes + (self.known.nbytes if self.known is not None else 0)


def _index_dtype(num_classes: int):
    return np.int16 if num_classes <= np.iinfo(np.int16).max + 1 else np.int32


def _parse(path: str, classes: Sequence[str], allow_empty: bool) -> tuple[StringArray, LabelIndex]:
    """(utterance ids in file order, their label sets) of a ``<utt> <label>[,<label>...]`` file; no Python
    object per line outlives its line (see ``datadir.read_scp``)."""
    index = {c: i for i, c in enumerate(classes)}
    keys = StringArrayBuilder()
    offsets, values = array("q", [0]), array("i")
    for lineno, utt, value in iter_kv(path, allow_empty_value=allow_empty, check_duplicates=False):
        ids = set()
        for label in value.split(","):
            if not label:
                continue
            i = index.get(label)
            if i is None:
                raise DataDirError(f"{path}:{lineno}: utterance '{utt}' has label '{label}' not in labels.txt")
            ids.add(i)
        values.extend(sorted(ids))
        offsets.append(len(values))
        keys.append(utt)
    labels = LabelIndex(np.frombuffer(offsets, np.int64).copy(),
                        np.frombuffer(values, np.int32).astype(_index_dtype(len(classes))), len(classes))
    return build_unique_keys(keys, path), labels


def _align(keys: StringArray, labels: LabelIndex, utts: Sequence[str], path: str, what: str) -> LabelIndex:
    """``labels`` reordered to ``utts``; an utterance of ``utts`` without a line is an error naming ``what``."""
    if keys.equals(utts):
        return labels  # the usual case: both files sorted the same way, one line per clip
    row = {k: i for i, k in enumerate(keys)}
    order = np.fromiter((row.get(u, -1) for u in utts), dtype=np.int64, count=len(utts))
    missing = np.flatnonzero(order < 0)
    if missing.size:
        raise DataDirError(f"{path}: no label for utterance '{utts[int(missing[0])]}' of {what} "
                           f"({missing.size} missing)")
    return labels.take(order)


def read_labels(data_dir: str | os.PathLike, classes: Sequence[str], utts: Optional[Sequence[str]] = None,
                what: str = "feats.scp") -> tuple[Sequence[str], ClipLabels]:
    """Labels of ``utt2label`` (and ``utt2label_known`` when present) as ``(utterance ids, ClipLabels)``.

    With ``utts`` the labels follow that order (and the ids returned are ``utts`` itself); an utterance of ``utts``
    missing from utt2label is an error naming ``what``. Without, the file order (the ids as a ``StringArray``).
    A positive label must be known.
    """
    data_dir = os.fspath(data_dir)
    label_path = os.path.join(data_dir, "utt2label")
    known_path = os.path.join(data_dir, "utt2label_known")
    has_known = os.path.isfile(known_path)
    keys, positive = _parse(label_path, classes, allow_empty=has_known)
    known = None
    if has_known:
        known_keys, known = _parse(known_path, classes, allow_empty=True)
        known = _align(known_keys, known, keys, known_path, "utt2label")
        bad = np.flatnonzero(~known.contains(positive))
        if bad.size:
            clip = int(np.searchsorted(positive.offsets, bad[0], side="right") - 1)
            raise DataDirError(f"{known_path}: utterance '{keys[clip]}' has positive label "
                               f"'{classes[positive.classes[bad[0]]]}' that is not marked known")
    if utts is None:
        return keys, ClipLabels(positive, known)
    positive = _align(keys, positive, utts, label_path, what)
    if known is not None:
        known = _align(keys, known, utts, label_path, what)
    return utts, ClipLabels(positive, known)


def read_targets(
    data_dir: str | os.PathLike, classes: list[str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Multi-hot targets ``[C]`` per utterance from ``utt2label``, and known-label masks from ``utt2label_known``.

    Returns ``(targets, known)``; ``known`` is None when every label is known. A positive label must be known.
    One dense array per clip: for small sets and tests; datasets keep ``read_labels``'s packed form.
    """
    data_dir = os.fspath(data_dir)
    classes = read_classes(data_dir) if classes is None else classes
    utts, labels = read_labels(data_dir, classes)
    targets = dict(zip(utts, labels.targets()))
    known = dict(zip(utts, labels.known_mask())) if labels.known is not None else None
    return targets, known
