"""ESC-50: ``meta/esc50.csv`` + ``audio/*.wav`` -> ``train_fold{k}`` (the other four folds) and ``test_fold{k}``.

The benchmark is 5-fold cross-validation: each fold is held out once and the five test accuracies are averaged.
Classes are the ``category`` names in ``target`` order, so output index = the corpus's own target number.
"""
from __future__ import annotations

import csv
import os

from maskspec.data.corpora.common import (
    CorpusError,
    Utterance,
    base_parser,
    check_class_name,
    log,
    require_dir,
    require_file,
    run_cli,
    write_splits,
)

HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
NUM_FOLDS = 5


def read_meta(db_root: str) -> tuple[list[tuple[str, int, str]], list[str]]:
    """Rows ``(filename, fold, category)`` and the class list (categories ordered by their ``target``)."""
    path = require_file(os.path.join(db_root, "meta", "esc50.csv"), "ESC-50 metadata file meta/esc50.csv")
    rows = []
    target_of: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[: len(HEADER)]] != HEADER:
            raise CorpusError(f"{path}:1: expected header {','.join(HEADER)}, got {header}")
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) < len(HEADER):
                raise CorpusError(f"{path}:{lineno}: expected {len(HEADER)} fields, got {len(row)}")
            filename, fold, target, category = (x.strip() for x in row[:4])
            try:
                fold_i, target_i = int(fold), int(target)
            except ValueError:
                raise CorpusError(f"{path}:{lineno}: fold {fold!r} and target {target!r} must be integers") from None
            if not 1 <= fold_i <= NUM_FOLDS:
                raise CorpusError(f"{path}:{lineno}: fold {fold_i} is not in 1..{NUM_FOLDS}")
            check_class_name(category, f"{path}:{lineno}")
            if target_of.setdefault(category, target_i) != target_i:
                raise CorpusError(f"{path}:{lineno}: category {category!r} has targets {target_of[category]} and {target_i}")
            rows.append((filename, fold_i, category))
    if not rows:
        raise CorpusError(f"{path}: no clips listed")
    classes = sorted(target_of, key=lambda c: (target_of[c], c))
    return rows, classes


def prepare(db_root: str, out_dir: str, nj: int = 4) -> dict[str, int]:
    """Write the ten fold directories; returns ``{set name: number of clips}``."""
    rows, classes = read_meta(db_root)
    audio_dir = require_dir(os.path.join(db_root, "audio"), "ESC-50 audio folder audio/")
    utts = [
        (fold, Utterance(os.path.splitext(name)[0], os.path.join(audio_dir, name), [category]))
        for name, fold, category in rows
    ]
    missing_folds = sorted(set(range(1, NUM_FOLDS + 1)) - {fold for fold, _ in utts})
    if missing_folds:
        raise CorpusError(f"{db_root}/meta/esc50.csv: no clips in fold(s) {missing_folds}")
    splits = {}
    for k in range(1, NUM_FOLDS + 1):
        splits[f"train_fold{k}"] = [u for fold, u in utts if fold != k]
        splits[f"test_fold{k}"] = [u for fold, u in utts if fold == k]
    sizes = write_splits(out_dir, splits, classes, nj, "meta/esc50.csv")
    log.info("ESC-50: %d clips, %d classes, folds %s", len(utts), len(classes),
             {k: sizes[f"test_fold{k}"] for k in range(1, NUM_FOLDS + 1)})
    return sizes


def main(argv=None) -> int:
    parser = base_parser("maskspec.data.corpora.esc50", __doc__, "ESC-50", "ESC50")
    return run_cli(lambda a: prepare(a.db_root, a.out_dir, a.nj), parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
