"""Speech Commands (v0.02: 35 words): word folders + ``validation_list.txt`` / ``testing_list.txt``.

Writes ``train`` (every clip in neither list), ``valid``, ``test`` with ``utt2spk`` (the ``<speaker>`` of
``<speaker>_nohash_<n>.wav``), and ``background_noise`` (``wav.scp`` + ``utt2dur`` of ``_background_noise_/``,
no labels: long noise recordings for augmentation, never a class).
Utterance ids are ``<speaker>_<word>_<n>``: speaker first so that utt2spk sorts like a Kaldi speaker directory.
"""
from __future__ import annotations

import os
import re

from maskspec.data.corpora.common import (
    CorpusError,
    Utterance,
    base_parser,
    check_class_name,
    durations_or_fail,
    log,
    require_file,
    run_cli,
    sorted_utts,
    write_data_dir,
    write_splits,
)

NOISE_DIR = "_background_noise_"
CLIP_RE = re.compile(r"^(?P<spk>[^_/]+)_nohash_(?P<n>\d+)\.wav$")
EXPECTED_WORDS_V2 = 35


def _utterance(db_root: str, rel: str, where: str) -> Utterance:
    parts = rel.split("/")
    m = CLIP_RE.match(parts[-1]) if len(parts) == 2 else None
    if m is None:
        raise CorpusError(f"{where}: {rel!r} is not <word>/<speaker>_nohash_<n>.wav")
    word = parts[0]
    return Utterance(f"{m['spk']}_{word}_{m['n']}", os.path.join(db_root, word, parts[1]), [word], spk=m["spk"])


def _read_list(path: str, db_root: str, words: set[str]) -> list[str]:
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            rel = line.strip()
            if not rel:
                continue
            if rel.split("/")[0] not in words:
                raise CorpusError(f"{path}:{lineno}: {rel!r} is not in a word folder of {db_root}")
            out.append(rel)
    return out


def prepare(db_root: str, out_dir: str, nj: int = 4) -> dict[str, int]:
    """Write train/valid/test/background_noise under ``out_dir``; returns ``{set name: number of clips}``."""
    valid_list = require_file(os.path.join(db_root, "validation_list.txt"), "Speech Commands validation_list.txt")
    test_list = require_file(os.path.join(db_root, "testing_list.txt"), "Speech Commands testing_list.txt")
    words = sorted(
        d for d in os.listdir(db_root) if os.path.isdir(os.path.join(db_root, d)) and not d.startswith(("_", "."))
    )
    if not words:
        raise CorpusError(f"{db_root}: no word folders (expected yes/, no/, ... beside testing_list.txt)")
    for w in words:
        check_class_name(w, os.path.join(db_root, w))
    if len(words) != EXPECTED_WORDS_V2:
        log.warning("found %d word folders, Speech Commands v0.02 has %d: is this the full v2 corpus?",
                    len(words), EXPECTED_WORDS_V2)
    word_set = set(words)
    valid = _read_list(valid_list, db_root, word_set)
    test = _read_list(test_list, db_root, word_set)
    overlap = sorted(set(valid) & set(test))
    if overlap:
        raise CorpusError(f"{test_list}: {overlap[0]!r} is also in {valid_list}")
    held_out = set(valid) | set(test)
    train = sorted(
        f"{w}/{name}" for w in words for name in os.listdir(os.path.join(db_root, w))
        if name.endswith(".wav") and f"{w}/{name}" not in held_out
    )
    splits = {
        "train": [_utterance(db_root, rel, os.path.join(db_root, rel)) for rel in train],
        "valid": [_utterance(db_root, rel, valid_list) for rel in valid],
        "test": [_utterance(db_root, rel, test_list) for rel in test],
    }
    sizes = write_splits(out_dir, splits, words, nj, "Speech Commands")

    noise_dir = os.path.join(db_root, NOISE_DIR)
    if os.path.isdir(noise_dir):
        noise = [
            Utterance(os.path.splitext(n)[0], os.path.join(noise_dir, n))
            for n in sorted(os.listdir(noise_dir)) if n.endswith(".wav")
        ]
        if noise:
            write_data_dir(os.path.join(out_dir, "background_noise"), sorted_utts(noise), None,
                           durations_or_fail(noise, nj, NOISE_DIR), write_labels=False)
            sizes["background_noise"] = len(noise)
    if "background_noise" not in sizes:
        log.warning("%s: no noise recordings; background_noise not written", noise_dir)
    log.info("Speech Commands: %d words, %s", len(words), sizes)
    return sizes


def main(argv=None) -> int:
    parser = base_parser("maskspec.data.corpora.speechcommands", __doc__, "Speech Commands", "SPEECHCOMMANDS")
    return run_cli(lambda a: prepare(a.db_root, a.out_dir, a.nj), parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
