"""AudioSet: segment CSVs + the user's own audio download -> ``balanced_train`` (AS-20K), ``train_2m`` (AS-2M:
balanced + unbalanced), ``eval``, and ``pretrain`` (audio only, no labels).

Layout under ``--db_root``: ``class_labels_indices.csv``, ``balanced_train_segments.csv``,
``unbalanced_train_segments.csv`` (needed for train_2m and pretrain only), ``eval_segments.csv``, and audio under
``--audio_dirs`` (default ``<db_root>/audio``, searched recursively, in the order given).

Audio is not distributed with AudioSet and every download lacks some videos, so a segment whose audio is not
found, or cannot be read, is skipped and reported (count in the log, ids in ``<out_dir>/local/``), never fatal.
A segment's file is looked up by name stem, trying ``--name_patterns`` in order (``{ytid}``, ``{start}``/``{end}``
as written in the CSV, e.g. 30.000, and ``{start_int}``/``{end_int}``, e.g. 30) and, for each stem,
``--audio_exts`` in order; the first existing file wins, and among equal names the earlier audio dir wins.

Class names are the ``display_name`` column made safe for label lists: every run of characters other than
letters, digits and ``( ) ' . -`` becomes ``_`` ("Male speech, man speaking" -> ``Male_speech_man_speaking``);
``labels.txt`` keeps the index order of class_labels_indices.csv, and ``<out_dir>/local/audioset_classes.tsv``
maps each name back to its mid and display name. Utterance ids are ``Y<YTID>`` (an id may start with ``-``).
"""
from __future__ import annotations

import csv
import dataclasses
import gc
import os
import re

from maskspec.data.corpora.common import (
    WHITESPACE,
    CorpusError,
    Utterance,
    audio_durations,
    base_parser,
    log,
    require_file,
    run_cli,
    sorted_utts,
    write_data_dir,
    write_list,
)

DEFAULT_PATTERNS = (
    "Y{ytid}",
    "{ytid}",
    "{ytid}_{start}",
    "{ytid}_{start_int}",
    "{ytid}_{start}_{end}",
    "{ytid}_{start_int}_{end_int}",
    "Y{ytid}_{start}_{end}",
    "{ytid}-{start_int}-{end_int}",
)
DEFAULT_EXTS = ("wav", "flac", "mp3", "ogg", "opus")
CSV_FILES = {
    "balanced_train": "balanced_train_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}
ALL_SETS = ("balanced_train", "train_2m", "eval", "pretrain")
_UNSAFE = re.compile(r"[^A-Za-z0-9()'.\-]+")


@dataclasses.dataclass
class Segment:
    ytid: str
    start: str
    end: str
    mids: list[str]
    where: str  # file:line, for messages


def class_name(display_name: str) -> str:
    return _UNSAFE.sub("_", display_name).strip("_")


def read_classes(path: str) -> tuple[list[str], dict[str, str], list[tuple[str, str, str]]]:
    """``(class names in index order, {mid: name}, [(name, mid, display_name)])`` from class_labels_indices.csv."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header[:3] != ["index", "mid", "display_name"]:
            raise CorpusError(f"{path}:1: expected header index,mid,display_name, got {header}")
        rows = []
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) < 3:
                raise CorpusError(f"{path}:{lineno}: expected index,mid,display_name")
            try:
                rows.append((int(row[0]), row[1].strip(), row[2].strip(), lineno))
            except ValueError:
                raise CorpusError(f"{path}:{lineno}: index {row[0]!r} is not an integer") from None
    rows.sort()
    if [r[0] for r in rows] != list(range(len(rows))):
        raise CorpusError(f"{path}: indices must be 0..N-1 without gaps")
    names, mid2name, table, used = [], {}, [], set()
    for _, mid, display, lineno in rows:
        name = class_name(display)
        if not name:
            raise CorpusError(f"{path}:{lineno}: display name {display!r} gives an empty class name")
        if name in used:  # two display names that differ only in punctuation: the mid tells them apart
            name = f"{name}_{class_name(mid)}"
        if mid in mid2name:
            raise CorpusError(f"{path}:{lineno}: duplicate mid {mid!r}")
        used.add(name)
        names.append(name)
        mid2name[mid] = name
        table.append((name, mid, display))
    return names, mid2name, table


def read_segments(path: str, mid2name: dict[str, str]) -> list[Segment]:
    """Rows ``YTID, start_seconds, end_seconds, "mid1,mid2,..."``; ``#`` lines are comments."""
    segments = []
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f, skipinitialspace=True), 1):
            if not row or row[0].lstrip().startswith("#"):
                continue
            where = f"{path}:{lineno}"
            if len(row) != 4:
                raise CorpusError(f"{where}: expected 4 fields (YTID, start, end, \"labels\"), got {len(row)}")
            ytid, start, end = (x.strip() for x in row[:3])
            try:
                float(start), float(end)
            except ValueError:
                raise CorpusError(f"{where}: start {start!r} and end {end!r} must be numbers") from None
            mids = [m.strip() for m in row[3].split(",") if m.strip()]
            unknown = [m for m in mids if m not in mid2name]
            if unknown:
                raise CorpusError(f"{where}: label {unknown[0]!r} is not in class_labels_indices.csv")
            if not ytid or WHITESPACE.search(ytid):
                raise CorpusError(f"{where}: bad YTID {ytid!r}")
            segments.append(Segment(ytid, start, end, mids, where))
    return segments


def index_audio(audio_dirs: list[str], exts: list[str]) -> dict[str, str]:
    """``{file name stem: path}`` of every audio file under ``audio_dirs`` (recursive, symlinks followed).

    For a stem found more than once the earlier dir, then the earlier extension in ``exts``, wins.
    """
    rank = {e.lower(): i for i, e in enumerate(exts)}
    best: dict[str, tuple[int, int, str]] = {}
    for d_rank, top in enumerate(audio_dirs):
        if not os.path.isdir(top):
            raise CorpusError(f"{top}: audio folder not found (set --audio_dirs)")
        seen_dirs = set()
        for root, dirs, files in os.walk(top, followlinks=True):
            real = os.path.realpath(root)
            if real in seen_dirs:  # a symlink loop
                dirs[:] = []
                continue
            seen_dirs.add(real)
            for name in files:
                stem, ext = os.path.splitext(name)
                e_rank = rank.get(ext[1:].lower())
                if e_rank is None:
                    continue
                cand = (d_rank, e_rank, os.path.join(root, name))
                if stem not in best or cand < best[stem]:
                    best[stem] = cand
    return {stem: v[2] for stem, v in best.items()}


def find_audio(seg: Segment, index: dict[str, str], patterns: list[str]) -> str | None:
    fields = {
        "ytid": seg.ytid, "start": seg.start, "end": seg.end,
        "start_int": str(int(float(seg.start))), "end_int": str(int(float(seg.end))),
    }
    for pattern in patterns:
        path = index.get(pattern.format(**fields))
        if path is not None:
            return path
    return None


def _report(out_dir: str, name: str, total: int, missing: list[Segment], bad: dict[str, str]) -> None:
    local = os.path.join(out_dir, "local")
    miss_file = os.path.join(local, f"audioset_missing_{name}.txt")
    bad_file = os.path.join(local, f"audioset_unreadable_{name}.txt")
    write_list(miss_file, (f"{s.ytid} {s.start} {s.end}" for s in missing))
    write_list(bad_file, (f"{p} {e}" for p, e in sorted(bad.items())))
    log.info(
        "%s: %d of %d segments kept; %d without audio (%.1f%%, listed in %s), %d unreadable (listed in %s)",
        name, total - len(missing) - len(bad), total, len(missing), 100.0 * len(missing) / max(total, 1),
        miss_file, len(bad), bad_file,
    )


def prepare(
    db_root: str,
    out_dir: str,
    nj: int = 4,
    audio_dirs: list[str] | None = None,
    patterns: list[str] | None = None,
    exts: list[str] | None = None,
    sets: list[str] | None = None,
    pretrain_extra: bool = True,
) -> dict[str, int]:
    """Write the requested sets (default: all of ``ALL_SETS``); returns ``{set name: number of clips}``."""
    # AS-2M makes millions of long-lived objects and no reference cycles: the collector's passes over them
    # would cost a fifth of the run and free nothing
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _prepare(db_root, out_dir, nj, audio_dirs, patterns, exts, sets, pretrain_extra)
    finally:
        if was_enabled:
            gc.enable()


def _prepare(db_root, out_dir, nj, audio_dirs, patterns, exts, sets, pretrain_extra) -> dict[str, int]:
    sets = list(sets or ALL_SETS)
    unknown_sets = [s for s in sets if s not in ALL_SETS]
    if unknown_sets:
        raise CorpusError(f"unknown set(s) {unknown_sets}; choose from {list(ALL_SETS)}")
    patterns = list(patterns or DEFAULT_PATTERNS)
    exts = [e.lstrip(".") for e in (exts or DEFAULT_EXTS)]
    audio_dirs = audio_dirs or [os.path.join(db_root, "audio")]

    classes, mid2name, table = read_classes(
        require_file(os.path.join(db_root, "class_labels_indices.csv"), "AudioSet class_labels_indices.csv"))
    needed = {"balanced_train": ["balanced_train"], "eval": ["eval"],
              "train_2m": ["balanced_train", "unbalanced_train"],
              "pretrain": ["balanced_train", "unbalanced_train", "eval"]}
    csvs = sorted({c for s in sets for c in needed[s]})
    segments = {
        c: read_segments(require_file(os.path.join(db_root, CSV_FILES[c]), f"AudioSet segment list {CSV_FILES[c]}"),
                         mid2name)
        for c in csvs
    }
    index = index_audio(audio_dirs, exts)
    log.info("found %d audio files under %s", len(index), " ".join(audio_dirs))
    paths = {c: [find_audio(s, index, patterns) for s in segs] for c, segs in segments.items()}
    extra = _extra_audio(index, segments) if "pretrain" in sets and pretrain_extra else []
    durs, bad = audio_durations([p for ps in paths.values() for p in ps if p is not None] + [u.path for u in extra], nj)

    def utterances(csv_names: list[str]) -> tuple[list[Utterance], list[Segment], dict[str, str], int]:
        utts, missing, unreadable, seen, total = [], [], {}, set(), 0
        for c in csv_names:
            for seg, path in zip(segments[c], paths[c]):
                if seg.ytid in seen:
                    log.warning("%s: YTID %s already listed; this row is skipped", seg.where, seg.ytid)
                    continue
                seen.add(seg.ytid)
                total += 1
                if path is None:
                    missing.append(seg)
                elif path in bad:
                    unreadable[path] = bad[path]
                else:
                    utts.append(Utterance(f"Y{seg.ytid}", path, [mid2name[m] for m in seg.mids]))
        return utts, missing, unreadable, total

    os.makedirs(os.path.join(out_dir, "local"), exist_ok=True)
    write_list(os.path.join(out_dir, "local", "audioset_classes.tsv"), ("\t".join(r) for r in table))
    sizes = {}
    for name in sets:
        csv_names = needed[name] if name != "pretrain" else ["balanced_train", "unbalanced_train"]
        utts, missing, unreadable, total = utterances(csv_names)
        _report(out_dir, name, total, missing, unreadable)
        if name == "pretrain":
            readable = [u for u in extra if u.path in durs]
            log.info("pretrain: %d audio files outside the segment lists added (%d unreadable left out)",
                     len(readable), len(extra) - len(readable))
            utts += readable
        if not utts:
            raise CorpusError(f"{name}: none of the {total} segments has readable audio under {' '.join(audio_dirs)}")
        write_data_dir(os.path.join(out_dir, name), sorted_utts(utts), classes, durs, write_labels=name != "pretrain")
        sizes[name] = len(utts)
    return sizes


def _extra_audio(index: dict[str, str], segments: dict[str, list[Segment]]) -> list[Utterance]:
    """Audio files that belong to no listed segment (e.g. a newer download), for label-free pre-training.

    A file whose name starts with any listed YTID (after an optional ``Y``) is left out, which keeps every
    evaluation clip, and every second copy of a training clip, out of pre-training.
    """
    listed = {s.ytid for segs in segments.values() for s in segs}
    lengths = sorted({len(y) for y in listed})  # {11} for real YouTube ids
    extra = []
    for stem, path in index.items():
        bare = [stem, stem[1:]] if stem.startswith("Y") else [stem]
        if any(b[:n] in listed for b in bare for n in lengths):
            continue
        if WHITESPACE.search(path):
            log.warning("%s: whitespace in the path, left out of pretrain", path)
            continue
        extra.append(Utterance(f"extra-{stem}", path))
    return extra


def main(argv=None) -> int:
    parser = base_parser("maskspec.data.corpora.audioset", __doc__, "AudioSet", "AUDIOSET")
    parser.add_argument("--audio_dirs", nargs="+", default=None, help="folders searched for audio (default: <db_root>/audio)")
    parser.add_argument("--name_patterns", nargs="+", default=list(DEFAULT_PATTERNS), help="file name stems tried in order")
    parser.add_argument("--audio_exts", nargs="+", default=list(DEFAULT_EXTS), help="extensions tried in order")
    parser.add_argument("--sets", nargs="+", default=list(ALL_SETS), choices=ALL_SETS, help="sets to write")
    parser.add_argument("--pretrain_extra", choices=["true", "false"], default="true",
                        help="add audio files outside the segment lists to pretrain")
    return run_cli(
        lambda a: prepare(a.db_root, a.out_dir, a.nj, a.audio_dirs, a.name_patterns, a.audio_exts, a.sets,
                          a.pretrain_extra == "true"),
        parser, argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
