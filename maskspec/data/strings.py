"""Compact string tables for per-clip lists of millions of entries (utterance ids, feats.scp values).

A Python list of 2 million strings costs about 60 bytes of object header per string, and every DataLoader worker
that reads them touches their reference counts, which copies the pages they live on into the worker (copy on
write): the list is paid again in each worker. ``StringArray`` keeps the UTF-8 bytes of all strings in one numpy
buffer with an offsets array, so the memory is two arrays that workers share untouched, and an item is decoded
when it is asked for.
"""
from __future__ import annotations

from array import array
from typing import Iterable, Iterator

import numpy as np


def take_runs(offsets: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs ``offsets[i]:offsets[i + 1]`` of a flat buffer picked in the order ``order`` (int [m]): the new
    offsets int64 [m + 1] and the buffer positions int64 [total] to gather (CSR row selection)."""
    order = np.asarray(order, dtype=np.int64)
    starts = offsets[order]
    lengths = offsets[order + 1] - starts
    new = np.zeros(len(order) + 1, np.int64)
    np.cumsum(lengths, out=new[1:])
    return new, np.repeat(starts - new[:-1], lengths) + np.arange(new[-1], dtype=np.int64)


class StringArray:
    """An immutable sequence of ``n`` strings: ``data`` uint8 [total bytes] and ``offsets`` int64 [n + 1]
    (string i is ``data[offsets[i]:offsets[i + 1]]``, UTF-8)."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray):
        self.data, self.offsets = data, offsets

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> "StringArray":
        builder = StringArrayBuilder()
        for s in strings:
            builder.append(s)
        return builder.build()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"StringArray index {index} out of range for {n} strings")
        return self.data[self.offsets[index]: self.offsets[index + 1]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        data, offsets = self.data, self.offsets.tolist()
        for i in range(len(offsets) - 1):
            yield data[offsets[i]: offsets[i + 1]].tobytes().decode("utf-8")

    def take(self, order: np.ndarray) -> "StringArray":
        """The strings at positions ``order`` (int [m]), in that order."""
        offsets, pos = take_runs(self.offsets, order)
        return StringArray(self.data[pos], offsets)

    def equals(self, other) -> bool:
        """Same strings in the same order (compares the buffers when ``other`` is a StringArray too)."""
        if isinstance(other, StringArray):
            return np.array_equal(self.offsets, other.offsets) and np.array_equal(self.data, other.data)
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def first_duplicate(self, hashes: np.ndarray) -> int | None:
        """Position of the first string equal to an earlier one, or None; ``hashes`` int64 [n] are the
        strings' ``hash()``, taken while they were read, so no set of n strings is ever built."""
        order = np.argsort(hashes, kind="stable")
        h = hashes[order]
        same = np.flatnonzero(h[1:] == h[:-1])
        if not same.size:
            return None
        # rare: equal hashes; the strings decide (a set per group, for collisions of three or more)
        starts = same[np.r_[True, np.diff(same) > 1]]
        found = []
        for start in starts.tolist():
            end = start + 1
            while end + 1 < len(h) and h[end + 1] == h[start]:
                end += 1
            seen: set[str] = set()
            for pos in sorted(order[start:end + 1].tolist()):
                s = self[pos]
                if s in seen:
                    found.append(pos)
                    break
                seen.add(s)
        return min(found) if found else None

    @property
    def nbytes(self) -> int:
        return self.data.nbytes + self.offsets.nbytes

    def __repr__(self) -> str:
        return f"StringArray({len(self)} strings, {self.nbytes} bytes)"


class StringArrayBuilder:
    """Appends strings into growing byte and offset buffers (no Python object per string is kept), and their
    ``hash()`` (``hashes``, for ``StringArray.first_duplicate``)."""

    def __init__(self):
        self._data = bytearray()
        self._offsets = array("q", [0])
        self._hashes = array("q")

    def append(self, s: str) -> None:
        self._data += s.encode("utf-8")
        self._offsets.append(len(self._data))
        self._hashes.append(hash(s))

    @property
    def hashes(self) -> np.ndarray:
        return np.frombuffer(self._hashes, dtype=np.int64).copy()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def build(self) -> StringArray:
        data = np.frombuffer(bytes(self._data), dtype=np.uint8)
        offsets = np.frombuffer(self._offsets, dtype=np.int64).copy()
        self._data, self._offsets = bytearray(), array("q", [0])
        return StringArray(data, offsets)


class SpecArray:
    """feats.scp values ``<file>:<locator>`` (ark byte offset or HDF5 key) of ``n`` clips: the few distinct files
    once (``files``), a file number int32 [n] and the locators as a ``StringArray``. Values without ``:``
    before their last ``:`` are kept whole, as locators of the empty file name."""

    def __init__(self, files: list[str], file_ids: np.ndarray, locators: StringArray):
        self.files, self.file_ids, self.locators = files, file_ids, locators

    def __len__(self) -> int:
        return len(self.file_ids)

    def __getitem__(self, index: int) -> str:
        loc = self.locators[index]
        f = self.files[self.file_ids[index]]
        return f"{f}:{loc}" if f else loc

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self[i]

    def take(self, order: np.ndarray) -> "SpecArray":
        return SpecArray(self.files, self.file_ids[np.asarray(order, dtype=np.int64)], self.locators.take(order))

    @property
    def nbytes(self) -> int:
        return self.file_ids.nbytes + self.locators.nbytes


class SpecArrayBuilder:
    def __init__(self):
        self._files: dict[str, int] = {}
        self._ids = array("i")
        self._locators = StringArrayBuilder()

    def append(self, spec: str) -> None:
        f, sep, loc = spec.rpartition(":")
        if not sep or not f:
            f, loc = "", spec
        fid = self._files.get(f)
        if fid is None:
            fid = self._files[f] = len(self._files)
        self._ids.append(fid)
        self._locators.append(loc)

    def build(self) -> SpecArray:
        return SpecArray(list(self._files), np.frombuffer(self._ids, dtype=np.int32).copy(), self._locators.build())
