"""Reading and writing Kaldi-style data directories (see docs/ARCHITECTURE.md for the file formats).

Every reader reports problems as ``DataDirError`` naming the file and the line, so a user can open the file at
the right place.
"""
from __future__ import annotations

import os
from operator import itemgetter
from typing import Iterable, Iterator, Mapping

import numpy as np

from maskspec.data.strings import SpecArray, SpecArrayBuilder, StringArray, StringArrayBuilder
from maskspec.utils.atomic import atomic_open


class DataDirError(ValueError):
    """A malformed data-directory file; the message names the file and line."""


def build_unique_keys(keys: StringArrayBuilder, path: str | os.PathLike) -> StringArray:
    """``keys.build()``, after checking that no key of the data-directory file ``path`` (one per line, in the
    order they were added) repeats: a repeat is an error naming ``path`` and its line."""
    hashes = keys.hashes
    strings = keys.build()
    dup = strings.first_duplicate(hashes)
    if dup is not None:
        raise DataDirError(f"{path}:{dup + 1}: duplicate key '{strings[dup]}'")
    return strings


def iter_kv(path: str | os.PathLike, allow_empty_value: bool = False,
            check_duplicates: bool = True) -> Iterator[tuple[int, str, str]]:
    """Yield ``(line_number, key, value)`` for ``<key> <value...>`` lines (value = rest of the line, stripped).

    Raises DataDirError on a missing file, an empty line, a duplicate key or (unless allowed) an empty value.
    ``check_duplicates`` False: the caller checks keys itself (``build_unique_keys``) instead of
    a set of every key here.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataDirError(f"{path}: no such file")
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                raise DataDirError(f"{path}:{lineno}: empty line")
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{lineno}: key '{key}' has no value")
            if check_duplicates:
                if key in seen:
                    raise DataDirError(f"{path}:{lineno}: duplicate key '{key}'")
                seen.add(key)
            yield lineno, key, value


def read_kv(path: str | os.PathLike, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a ``<key> <value...>`` file into an ordered dict (see ``iter_kv`` for the errors)."""
    return {key: value for _, key, value in iter_kv(path, allow_empty_value)}


def read_scp(path: str | os.PathLike) -> tuple[StringArray, SpecArray]:
    """A ``feats.scp`` as compact tables ``(utterance ids, values)`` in file order (errors as ``iter_kv``).

    No Python object per line outlives its line (not even a set of the keys): memory freed after loading stays in
    the heap, and forked DataLoader workers that allocate into it copy its pages; the tables they share."""
    path = os.fspath(path)
    utts, specs = StringArrayBuilder(), SpecArrayBuilder()
    for _, key, value in iter_kv(path, check_duplicates=False):
        utts.append(key)
        specs.append(value)
    return build_unique_keys(utts, path), specs.build()


def sort_key(key: str) -> bytes:
    """Sort order of every data-directory file: byte order, as ``LC_ALL=C sort``."""
    return key.encode("utf-8")


def write_kv(path: str | os.PathLike, mapping: Mapping[str, object] | Iterable[tuple[str, object]]) -> None:
    """Write ``<key> <value>`` lines sorted in C order, atomically."""
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    # str order is code point order, which UTF-8 byte order (sort_key) equals: no key function per row needed
    rows = sorted(((str(k), "" if v is None else str(v)) for k, v in items), key=itemgetter(0))
    with atomic_open(path, "w", encoding="utf-8") as f:
        for k, v in rows:
            f.write(f"{k} {v}\n" if v != "" else f"{k}\n")


def read_list(path: str | os.PathLike) -> list[str]:
    """One item per line (labels.txt, partition lists); blank lines are an error naming the line."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataDirError(f"{path}: no such file")
    items = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            item = line.strip()
            if not item:
                raise DataDirError(f"{path}:{lineno}: empty line")
            items.append(item)
    return items


def read_classes(data_dir: str | os.PathLike) -> list[str]:
    """Class names of ``<data_dir>/labels.txt`` in output-index order; duplicates are an error."""
    path = os.path.join(data_dir, "labels.txt")
    classes = read_list(path)
    seen = set()
    for i, c in enumerate(classes, 1):
        if c in seen:
            raise DataDirError(f"{path}:{i}: duplicate class '{c}'")
        seen.add(c)
    return classes


def read_segments(path: str | os.PathLike) -> dict[str, tuple[str, float, float]]:
    """``segments`` lines ``<utt> <reco> <start> <end>`` -> ``{utt: (reco, start, end)}`` in seconds.

    ``end`` -1 means "to the end of the recording". Errors name the file and line.
    """
    path = os.fspath(path)
    out: dict[str, tuple[str, float, float]] = {}
    for lineno, utt, value in iter_kv(path):
        fields = value.split()
        if len(fields) != 3:
            raise DataDirError(f"{path}:{lineno}: expected '<utt> <reco> <start> <end>', got {len(fields) + 1} fields")
        reco = fields[0]
        try:
            start, end = float(fields[1]), float(fields[2])
        except ValueError:
            raise DataDirError(
                f"{path}:{lineno}: start/end of '{utt}' are not numbers: {fields[1]} {fields[2]}"
            ) from None
        if not np.isfinite(start) or not np.isfinite(end) or start < 0:
            raise DataDirError(f"{path}:{lineno}: start/end of '{utt}' must be finite and start >= 0")
        if end != -1 and end <= start:
            raise DataDirError(f"{path}:{lineno}: segment '{utt}' ends ({end}) before it starts ({start})")
        out[utt] = (reco, start, end)
    return out
