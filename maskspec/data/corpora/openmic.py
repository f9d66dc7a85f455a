"""OpenMIC-2018: ``openmic-2018.npz`` (Y_true, Y_mask, sample_key), ``class-map.json``, ``partitions/`` and
``audio/<first 3 chars>/<key>.ogg`` -> ``train``, ``valid``, ``test`` with partial labels.

Labels are partial: ``utt2label_known`` lists the instruments annotated for a clip (``Y_mask``) and ``utt2label``
those of them with ``Y_true > 0.5``. ``test`` is ``split01_test``; ``valid`` is carved from ``split01_train``:
the ``--valid_fraction`` of its keys that come first in MD5 order of the key (deterministic, independent of file
order and machine); ``train`` is the rest.
"""
from __future__ import annotations

import json
import os

import numpy as np

from maskspec.data.corpora.common import (
    CorpusError,
    Utterance,
    base_parser,
    check_class_name,
    log,
    pick_fraction,
    require_file,
    run_cli,
    write_splits,
)

POSITIVE_THRESHOLD = 0.5


def read_class_map(path: str) -> list[str]:
    """Instrument names in index order from ``class-map.json`` (``{"accordion": 0, ...}``)."""
    try:
        with open(path, encoding="utf-8") as f:
            mapping = json.load(f)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(mapping, dict) or sorted(mapping.values()) != list(range(len(mapping))):
        raise CorpusError(f"{path}: expected an object mapping instrument name to index 0..N-1")
    return [check_class_name(name, path) for name in sorted(mapping, key=mapping.__getitem__)]


def read_npz(path: str, num_classes: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(sample_keys, Y_true [N, C] float, Y_mask [N, C] bool)``; X (VGGish features) is not loaded."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{path}: cannot be read as a numpy .npz archive ({exc})") from None
    with data:
        missing = [k for k in ("Y_true", "Y_mask", "sample_key") if k not in data.files]
        if missing:
            raise CorpusError(f"{path}: array(s) {missing} not found (has {data.files})")
        y_true = np.asarray(data["Y_true"], dtype=np.float32)
        y_mask = np.asarray(data["Y_mask"]).astype(bool)
        raw_keys = data["sample_key"]
    keys = [k.decode("utf-8") if isinstance(k, bytes) else str(k) for k in raw_keys.tolist()]
    n = len(keys)
    if y_true.shape != (n, num_classes) or y_mask.shape != (n, num_classes):
        raise CorpusError(
            f"{path}: Y_true {y_true.shape} and Y_mask {y_mask.shape} must both be [{n} keys, {num_classes} classes]"
        )
    if len(set(keys)) != n:
        raise CorpusError(f"{path}: sample_key has duplicates")
    return keys, y_true, y_mask


def read_partition(path: str, known_keys: dict[str, int]) -> list[str]:
    """Sample keys of a partition file (one per line; a ``sample_key`` header line is tolerated)."""
    keys = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            key = line.strip().split(",")[0]
            if not key or (lineno == 1 and key == "sample_key"):
                continue
            if key not in known_keys:
                raise CorpusError(f"{path}:{lineno}: sample key {key!r} is not in openmic-2018.npz")
            keys.append(key)
    if not keys:
        raise CorpusError(f"{path}: no sample keys")
    return keys


def prepare(db_root: str, out_dir: str, nj: int = 4, valid_fraction: float = 0.1, split: str = "split01") -> dict:
    """Write train/valid/test under ``out_dir``; returns ``{set name: number of clips}``."""
    classes = read_class_map(require_file(os.path.join(db_root, "class-map.json"), "OpenMIC class-map.json"))
    keys, y_true, y_mask = read_npz(
        require_file(os.path.join(db_root, "openmic-2018.npz"), "OpenMIC label file openmic-2018.npz"), len(classes)
    )
    index = {k: i for i, k in enumerate(keys)}
    parts = {}
    for part in ("train", "test"):
        path = require_file(os.path.join(db_root, "partitions", f"{split}_{part}.csv"), f"OpenMIC partition {part}")
        parts[part] = read_partition(path, index)
    overlap = set(parts["train"]) & set(parts["test"])
    if overlap:
        raise CorpusError(f"{db_root}/partitions: key {sorted(overlap)[0]!r} is in both {split} train and test")
    valid_keys = pick_fraction(parts["train"], valid_fraction)

    def utterance(key: str) -> Utterance:
        i = index[key]
        known = [c for c, m in zip(classes, y_mask[i]) if m]
        labels = [c for c, m, y in zip(classes, y_mask[i], y_true[i]) if m and y > POSITIVE_THRESHOLD]
        return Utterance(key, os.path.join(db_root, "audio", key[:3], f"{key}.ogg"), labels, known)

    splits = {
        "train": [utterance(k) for k in parts["train"] if k not in valid_keys],
        "valid": [utterance(k) for k in parts["train"] if k in valid_keys],
        "test": [utterance(k) for k in parts["test"]],
    }
    if not splits["valid"]:
        raise CorpusError(f"--valid_fraction {valid_fraction} leaves no validation clips")
    sizes = write_splits(out_dir, splits, classes, nj, "OpenMIC-2018")
    for name, utts in splits.items():
        unlabeled = sum(1 for u in utts if not u.known)
        if unlabeled:
            log.warning("%s: %d clip(s) have no annotated instrument (they add nothing to loss or metric)",
                        name, unlabeled)
    log.info("OpenMIC-2018: %d instruments, %s", len(classes), sizes)
    return sizes


def main(argv=None) -> int:
    parser = base_parser("maskspec.data.corpora.openmic", __doc__, "OpenMIC-2018", "OPENMIC")
    parser.add_argument("--valid_fraction", type=float, default=0.1,
                        help="share of split01_train carved out for validation")
    parser.add_argument("--split", default="split01", help="partition prefix under partitions/")
    return run_cli(lambda a: prepare(a.db_root, a.out_dir, a.nj, a.valid_fraction, a.split), parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
