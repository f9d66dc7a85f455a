"""DCASE2019 Task 1A (TAU Urban Acoustic Scenes 2019, development set) -> ``train``, ``valid``, ``test``.

``test`` is ``evaluation_setup/fold1_evaluate.csv`` (the paper's test set). ``valid`` is carved from
``fold1_train.csv`` by recording location, so that no location contributes 10 s segments to both: the location of
a clip is (scene, ``identifier`` of ``meta.csv``, e.g. ``barcelona-0``) or, without ``meta.csv``, the
``<city>-<location>`` read from the file name ``<scene>-<city>-<location>-<segment>-<device>.wav``; a file name
of another form is its own location. Per scene, the ``--valid_fraction`` of its locations that come first in MD5
order go to ``valid`` (deterministic); ``train`` is the rest of ``fold1_train``.
"""
from __future__ import annotations

import collections
import csv
import os

from maskspec.data.corpora.common import (
    CorpusError,
    Utterance,
    base_parser,
    check_class_name,
    log,
    pick_fraction,
    require_dir,
    require_file,
    run_cli,
    write_splits,
)


def read_tsv(path: str, columns: list[str]) -> list[dict[str, str]]:
    """Rows of a tab-separated file with a header holding at least ``columns``; errors name file and line."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise CorpusError(f"{path}:1: header {header} lacks column(s) {missing} (tab-separated expected)")
        rows = []
        for lineno, row in enumerate(reader, 2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < len(header):
                raise CorpusError(f"{path}:{lineno}: expected {len(header)} tab-separated fields, got {len(row)}")
            rec = {h: v.strip() for h, v in zip(header, row)}
            rec["_line"] = f"{path}:{lineno}"
            rows.append(rec)
    if not rows:
        raise CorpusError(f"{path}: no rows")
    return rows


def location_from_name(filename: str) -> str:
    """``audio/airport-lisbon-1000-40000-a.wav`` -> ``lisbon-1000``; other forms -> the file name itself."""
    parts = os.path.splitext(os.path.basename(filename))[0].split("-")
    return f"{parts[1]}-{parts[2]}" if len(parts) == 5 else filename


def prepare(db_root: str, out_dir: str, nj: int = 4, valid_fraction: float = 0.1) -> dict[str, int]:
    """Write train/valid/test under ``out_dir``; returns ``{set name: number of clips}``."""
    setup = os.path.join(db_root, "evaluation_setup")
    train_rows = read_tsv(require_file(os.path.join(setup, "fold1_train.csv"), "DCASE fold1_train.csv"),
                          ["filename", "scene_label"])
    eval_rows = read_tsv(require_file(os.path.join(setup, "fold1_evaluate.csv"), "DCASE fold1_evaluate.csv"),
                         ["filename", "scene_label"])
    require_dir(os.path.join(db_root, "audio"), "DCASE audio folder audio/")
    meta_path = os.path.join(db_root, "meta.csv")
    identifier = {}
    if os.path.isfile(meta_path):
        identifier = {r["filename"]: r["identifier"] for r in read_tsv(meta_path, ["filename", "identifier"])}
    else:
        log.warning("%s not found: locations for the validation split are read from the file names", meta_path)

    classes = sorted({check_class_name(r["scene_label"], r["_line"]) for r in train_rows + eval_rows})
    unseen = {r["scene_label"] for r in eval_rows} - {r["scene_label"] for r in train_rows}
    if unseen:
        raise CorpusError(f"{setup}/fold1_evaluate.csv: scene(s) {sorted(unseen)} never occur in fold1_train.csv")

    def utterance(row: dict[str, str]) -> Utterance:
        name = row["filename"]
        return Utterance(os.path.splitext(os.path.basename(name))[0], os.path.join(db_root, name), [row["scene_label"]])

    by_scene = collections.defaultdict(list)
    for r in train_rows:
        loc = identifier.get(r["filename"]) or location_from_name(r["filename"])
        by_scene[r["scene_label"]].append((f"{r['scene_label']}/{loc}", r))
    valid_locs = set()
    for scene, items in by_scene.items():
        valid_locs |= pick_fraction([loc for loc, _ in items], valid_fraction)
    splits = {
        "train": [utterance(r) for items in by_scene.values() for loc, r in items if loc not in valid_locs],
        "valid": [utterance(r) for items in by_scene.values() for loc, r in items if loc in valid_locs],
        "test": [utterance(r) for r in eval_rows],
    }
    if not splits["valid"]:
        raise CorpusError(f"--valid_fraction {valid_fraction} leaves no validation clips")
    train_ids = {u.utt_id for u in splits["train"] + splits["valid"]}
    leaked = [u.utt_id for u in splits["test"] if u.utt_id in train_ids]
    if leaked:
        raise CorpusError(f"{setup}: clip {leaked[0]!r} is in both fold1_train.csv and fold1_evaluate.csv")
    sizes = write_splits(out_dir, splits, classes, nj, "DCASE2019 Task 1A")
    log.info("DCASE2019 Task 1A: %d scenes, %d validation locations, %s", len(classes), len(valid_locs), sizes)
    return sizes


def main(argv=None) -> int:
    parser = base_parser("maskspec.data.corpora.dcase2019", __doc__, "DCASE2019 Task 1A", "DCASE2019_TASK1A")
    parser.add_argument("--valid_fraction", type=float, default=0.1,
                        help="share of each scene's recording locations in fold1_train held out for validation")
    return run_cli(lambda a: prepare(a.db_root, a.out_dir, a.nj, a.valid_fraction), parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
