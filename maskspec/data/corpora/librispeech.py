"""LibriSpeech: ``LibriSpeech/<subset>/<speaker>/<chapter>/*.flac`` + ``<speaker>-<chapter>.trans.txt`` -> data dirs.

Each subset found becomes a data directory with ``wav.scp``, ``utt2dur``, ``utt2spk`` (the speaker id) and
``text`` (the transcript as distributed: upper case, apostrophes kept); the set is named as in Kaldi and ESPnet,
``train-clean-100`` -> ``train_clean_100``. ``--db_root`` is the folder holding ``LibriSpeech/`` (or
``LibriSpeech/`` itself). A transcript line that is not ``<speaker>-<chapter>-<n> <WORDS>`` of its own chapter, a
flac without a transcript or a transcript without a flac is an error naming the file (and line).
"""
from __future__ import annotations

import os
import re

from maskspec.data.corpora.common import (
    CorpusError,
    Utterance,
    base_parser,
    log,
    require_dir,
    run_cli,
    write_splits,
)
from maskspec.utils.atomic import atomic_open

SUBSETS = ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other")
OTHER_SUBSETS = ("train-clean-360", "train-other-500")
_UTT_RE = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def corpus_dir(db_root: str) -> str:
    """The ``LibriSpeech`` folder: ``<db_root>/LibriSpeech`` or ``db_root`` itself when it holds the subsets."""
    inner = os.path.join(db_root, "LibriSpeech")
    if os.path.isdir(inner):
        return inner
    if any(os.path.isdir(os.path.join(db_root, s)) for s in SUBSETS + OTHER_SUBSETS):
        return db_root
    raise CorpusError(f"{db_root}: no LibriSpeech/ folder and no subset ({', '.join(SUBSETS)}) in it "
                      f"(is --db_root where the archives were unpacked?)")


def set_name(subset: str) -> str:
    return subset.replace("-", "_")


def read_chapter(chapter_dir: str, speaker: str, chapter: str) -> list[Utterance]:
    """The utterances of one chapter folder, from its transcript file and flac files."""
    trans = os.path.join(chapter_dir, f"{speaker}-{chapter}.trans.txt")
    if not os.path.isfile(trans):
        raise CorpusError(f"{trans}: transcript file missing (chapter folder {chapter_dir})")
    flacs = {os.path.splitext(f)[0] for f in os.listdir(chapter_dir) if f.endswith(".flac")}
    utts = []
    with open(trans, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            utt, _, words = line.strip().partition(" ")
            m = _UTT_RE.match(utt)
            if not m or (m.group(1), m.group(2)) != (speaker, chapter):
                raise CorpusError(f"{trans}:{lineno}: utterance id {utt!r} is not {speaker}-{chapter}-<number>")
            if not words.strip():
                raise CorpusError(f"{trans}:{lineno}: no transcript for {utt}")
            if utt not in flacs:
                raise CorpusError(f"{trans}:{lineno}: no audio {os.path.join(chapter_dir, utt + '.flac')}")
            flacs.discard(utt)
            utts.append(Utterance(utt, os.path.join(chapter_dir, utt + ".flac"), spk=speaker, text=words))
    if flacs:
        raise CorpusError(f"{os.path.join(chapter_dir, sorted(flacs)[0] + '.flac')}: not in {trans}")
    return utts


def read_subset(root: str, subset: str) -> list[Utterance]:
    subset_dir = require_dir(os.path.join(root, subset), f"LibriSpeech subset {subset}/")
    utts = []
    for speaker in sorted(os.listdir(subset_dir)):
        spk_dir = os.path.join(subset_dir, speaker)
        if not os.path.isdir(spk_dir):
            continue
        if not speaker.isdigit():
            raise CorpusError(f"{spk_dir}: a speaker folder is named by its number")
        for chapter in sorted(os.listdir(spk_dir)):
            if os.path.isdir(os.path.join(spk_dir, chapter)):
                utts += read_chapter(os.path.join(spk_dir, chapter), speaker, chapter)
    if not utts:
        raise CorpusError(f"{subset_dir}: no utterances")
    return utts


def prepare(db_root: str, out_dir: str, subsets=SUBSETS, nj: int = 4, skip_missing: bool = False) -> dict[str, int]:
    """Write one data directory per subset; returns ``{set name: number of utterances}``.

    ``skip_missing``: subsets the corpus folder does not hold are skipped (a warning names them, and
    ``<out_dir>/skipped_subsets`` lists them) instead of stopping; at least one must be there.
    """
    root = corpus_dir(db_root)
    if skip_missing:
        missing = [s for s in subsets if not os.path.isdir(os.path.join(root, s))]
        subsets = [s for s in subsets if s not in missing]
        if not subsets:
            raise CorpusError(f"{root}: none of the subsets {', '.join(missing)} is there")
        os.makedirs(out_dir, exist_ok=True)
        with atomic_open(os.path.join(out_dir, "skipped_subsets"), "w") as f:
            f.writelines(s + "\n" for s in missing)
        if missing:
            log.warning("LibriSpeech: skipped %s (not in %s); prepared %s", " ".join(missing), root,
                        " ".join(subsets))
    splits = {set_name(s): read_subset(root, s) for s in subsets}
    sizes = write_splits(out_dir, splits, None, nj, f"LibriSpeech in {root}")
    log.info("LibriSpeech: %s", sizes)
    return sizes


def main(argv=None) -> int:
    parser = base_parser("maskspec.data.corpora.librispeech", __doc__, "LibriSpeech", "LIBRISPEECH")
    parser.add_argument("--subsets", nargs="+", default=list(SUBSETS), choices=SUBSETS + OTHER_SUBSETS,
                        help="subsets to prepare")
    parser.add_argument("--skip_missing", default="false", choices=("true", "false"),
                        help="true: skip (and name) the subsets the corpus folder does not hold")
    return run_cli(lambda a: prepare(a.db_root, a.out_dir, a.subsets, a.nj, a.skip_missing == "true"), parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
