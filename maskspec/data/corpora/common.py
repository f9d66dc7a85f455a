"""Helpers shared by the corpus readers: required-file checks, audio durations, and data-directory writing.

A reader builds a list of ``Utterance`` records for each split and hands it to ``write_data_dir``, which writes
``wav.scp``, ``utt2dur``, ``utt2label``, ``labels.txt`` and the optional ``utt2label_known`` / ``utt2spk`` / ``text`` into a
temporary folder beside the target and renames it into place, so a killed run never leaves half a data directory.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
from typing import Callable, Iterable, Sequence

import soundfile

from maskspec.data.datadir import sort_key, write_kv
from maskspec.utils.atomic import atomic_open

log = logging.getLogger("maskspec.corpora")

# Class names end up in comma-separated label lists and in whitespace-separated files.
_BAD_CLASS_CHARS = re.compile(r"[\s,]")


class CorpusError(RuntimeError):
    """The corpus on disk is not in the expected layout; the message names the file (and line)."""


# str.isspace's characters, found by the regex engine in one call (a Python loop per character cost seconds at 2M)
WHITESPACE = re.compile(r"\s")


@dataclasses.dataclass
class Utterance:
    """One clip of a split: ``labels``/``known`` are class names (``known`` None = every class annotated);
    ``text`` its transcript (speech corpora)."""

    utt_id: str
    path: str
    labels: list[str] = dataclasses.field(default_factory=list)
    known: list[str] | None = None
    spk: str | None = None
    text: str | None = None


def setup_logging(verbose: bool = True) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
    )


def require_file(path: str, what: str) -> str:
    """Return ``path`` if it is a file, else raise CorpusError saying which corpus file is missing."""
    if not os.path.isfile(path):
        raise CorpusError(f"{path}: required {what} not found (is --db_root the corpus root?)")
    return path


def require_dir(path: str, what: str) -> str:
    if not os.path.isdir(path):
        raise CorpusError(f"{path}: required {what} not found (is --db_root the corpus root?)")
    return path


def check_class_name(name: str, where: str) -> str:
    if not name or _BAD_CLASS_CHARS.search(name):
        raise CorpusError(f"{where}: class name {name!r} is empty or contains whitespace or a comma")
    return name


def stable_hash(text: str) -> str:
    """A hash that does not change between Python runs or machines (unlike ``hash()``), for deterministic splits."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def pick_fraction(groups: Sequence[str], fraction: float) -> set[str]:
    """The first ``round(fraction * len(groups))`` groups in stable-hash order (at least one if fraction > 0).

    Deterministic: the same names give the same pick on every machine, whatever their input order.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    unique = sorted(set(groups), key=lambda g: (stable_hash(g), g))
    n = round(fraction * len(unique))
    if fraction > 0 and n == 0 and len(unique) > 1:
        n = 1
    return set(unique[:n])


def _duration(path: str) -> tuple[str, float | None, str | None]:
    try:
        # SoundFile rather than soundfile.info: the header only, about half the time (AS-2M has 2M files)
        with soundfile.SoundFile(path) as f:
            frames, samplerate = f.frames, f.samplerate
    except Exception as exc:  # libsndfile raises several types; any of them means "cannot read this file"
        return path, None, f"{type(exc).__name__}: {exc}"
    if samplerate <= 0 or frames <= 0:
        return path, None, "no audio samples"
    return path, frames / samplerate, None


def _durations(paths: Sequence[str]) -> list[tuple[str, float | None, str | None]]:
    return [_duration(p) for p in paths]


def audio_durations(paths: Iterable[str], nj: int = 4) -> tuple[dict[str, float], dict[str, str]]:
    """Read each file's header: ``({path: seconds}, {path: error})`` for the readable and the unreadable files.

    Threads suffice: libsndfile releases the GIL while it reads, and the work is file-system bound. Each task
    is a run of files, not one file: a future per file cost more than the header it reads.
    """
    paths = list(dict.fromkeys(paths))
    durs: dict[str, float] = {}
    errors: dict[str, str] = {}
    chunk, run = 100_000, 500  # bound the futures alive for AudioSet's 2M files; files per task
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        for start in range(0, len(paths), chunk):
            block = paths[start:start + chunk]
            for results in pool.map(_durations, [block[i:i + run] for i in range(0, len(block), run)]):
                for path, dur, err in results:
                    if err is None:
                        durs[path] = dur
                    else:
                        errors[path] = err
            if len(paths) > chunk:
                log.info("read %d of %d audio headers", min(start + chunk, len(paths)), len(paths))
    return durs, errors


def write_list(path: str, items: Iterable[str]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        for item in items:
            f.write(f"{item}\n")


def write_data_dir(
    out_dir: str,
    utts: Sequence[Utterance],
    classes: Sequence[str] | None,
    durations: dict[str, float],
    write_labels: bool = True,
) -> None:
    """Write one Kaldi data directory for ``utts`` (every file sorted in C order), replacing ``out_dir`` whole.

    ``durations`` maps audio paths to seconds (from ``audio_durations``). With ``write_labels`` False (e.g. a
    pre-training set, or speech with transcripts) no ``utt2label``/``labels.txt`` are written. Raises CorpusError on a duplicate
    utterance id or a label outside ``classes``.
    """
    if not utts:
        raise CorpusError(f"{out_dir}: no utterances to write (empty split)")
    seen: set[str] = set()
    for u in utts:
        if u.utt_id in seen:
            raise CorpusError(f"{out_dir}: duplicate utterance id {u.utt_id!r}")
        if WHITESPACE.search(u.utt_id):
            raise CorpusError(f"{out_dir}: utterance id {u.utt_id!r} contains whitespace")
        seen.add(u.utt_id)
    class_set = set(classes or [])
    if write_labels:
        for u in utts:
            for label in u.labels + (u.known or []):
                if label not in class_set:
                    raise CorpusError(f"{out_dir}: utterance {u.utt_id!r} has label {label!r} not in the class list")

    parent = os.path.dirname(os.path.abspath(out_dir)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out_dir) + ".", suffix=".tmp", dir=parent)
    try:
        for u in utts:
            if WHITESPACE.search(u.path):
                # wav.scp has no quoting; a path with spaces would be read as a command line.
                raise CorpusError(f"{u.path}: audio path contains whitespace, which wav.scp cannot hold")
        write_kv(os.path.join(tmp, "wav.scp"), ((u.utt_id, u.path) for u in utts))
        write_kv(os.path.join(tmp, "utt2dur"), ((u.utt_id, f"{durations[u.path]:.3f}") for u in utts))
        if write_labels:
            order = {c: i for i, c in enumerate(classes)}
            write_list(os.path.join(tmp, "labels.txt"), classes)
            write_kv(
                os.path.join(tmp, "utt2label"),
                ((u.utt_id, ",".join(sorted(set(u.labels), key=order.__getitem__))) for u in utts),
            )
            if any(u.known is not None for u in utts):
                write_kv(
                    os.path.join(tmp, "utt2label_known"),
                    (
                        (u.utt_id, ",".join(sorted(set(classes if u.known is None else u.known), key=order.__getitem__)))
                        for u in utts
                    ),
                )
        if any(u.spk is not None for u in utts):
            missing = [u.utt_id for u in utts if u.spk is None]
            if missing:
                raise CorpusError(f"{out_dir}: utterance {missing[0]!r} has no speaker while others have one")
            write_kv(os.path.join(tmp, "utt2spk"), ((u.utt_id, u.spk) for u in utts))
        if any(u.text is not None for u in utts):
            missing = [u.utt_id for u in utts if not u.text]
            if missing:
                raise CorpusError(f"{out_dir}: utterance {missing[0]!r} has no transcript while others have one")
            write_kv(os.path.join(tmp, "text"), ((u.utt_id, " ".join(u.text.split())) for u in utts))
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %s: %d utterances", out_dir, len(utts))


def sorted_utts(utts: Iterable[Utterance]) -> list[Utterance]:
    return sorted(utts, key=lambda u: sort_key(u.utt_id))


def durations_or_fail(utts: Sequence[Utterance], nj: int, what: str) -> dict[str, float]:
    """Durations of every clip of a curated corpus, where a missing or unreadable file is a broken download.

    Raises CorpusError naming the first few bad files and the total count.
    """
    missing = [u.path for u in utts if not os.path.isfile(u.path)]
    if missing:
        shown = "\n  ".join(missing[:5])
        raise CorpusError(f"{len(missing)} audio file(s) of {what} are missing, e.g.:\n  {shown}")
    durs, errors = audio_durations((u.path for u in utts), nj)
    if errors:
        shown = "\n  ".join(f"{p}: {e}" for p, e in list(errors.items())[:5])
        raise CorpusError(f"{len(errors)} audio file(s) of {what} cannot be read, e.g.:\n  {shown}")
    return durs


def write_splits(out_dir: str, splits: dict[str, list[Utterance]], classes: Sequence[str] | None, nj: int,
                 what: str) -> dict[str, int]:
    """Write ``<out_dir>/<name>`` for each ``{name: utterances}`` of a curated corpus; ``{name: clip count}``.
    ``classes`` None: a corpus without class labels (speech with transcripts).

    The durations of every clip are read first (``durations_or_fail``, ``what`` names the corpus in its
    errors), so a broken download fails before any data directory is replaced.
    """
    durs = durations_or_fail([u for utts in splits.values() for u in utts], nj, what)
    sizes = {}
    for name, utts in splits.items():
        write_data_dir(os.path.join(out_dir, name), sorted_utts(utts), classes, durs, write_labels=classes is not None)
        sizes[name] = len(utts)
    return sizes


def corpus_root(corpus: str, db_var: str) -> Callable[[str], str]:
    """The ``type`` of ``--db_root``: an empty value (``db_var`` unset in the recipe's db.sh) or a path that is
    not a directory is an argparse error naming the option and the path (exit status 2)."""

    def check(path: str) -> str:
        if not path:
            raise argparse.ArgumentTypeError(
                f"no {corpus} root: set {db_var} in db.sh (egs/TEMPLATE/db.sh) or pass --db_root DIR")
        if not os.path.isdir(path):
            raise argparse.ArgumentTypeError(f"{corpus} root '{path}' is not a directory")
        return path

    return check


def base_parser(prog: str, description: str, corpus: str, db_var: str) -> argparse.ArgumentParser:
    """Options every corpus reader takes; ``corpus`` (e.g. "ESC-50") and ``db_var`` (its db.sh variable, e.g.
    ESC50) only word the errors about ``--db_root``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--db_root", required=True, type=corpus_root(corpus, db_var),
                        help=f"{corpus} root, in the corpus's official layout (recipes: {db_var} in db.sh)")
    parser.add_argument("--out_dir", required=True, help="where the data directories go (e.g. data)")
    parser.add_argument("--nj", type=int, default=4, help="threads reading audio headers for utt2dur")
    return parser


def run_cli(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse, run, and turn a CorpusError into one clear line on stderr and exit status 1."""
    args = parser.parse_args(argv)
    setup_logging()
    try:
        main(args)
    except CorpusError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0
