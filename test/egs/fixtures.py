"""Small fixture trees of the five corpora in their official layouts, with generated audio.

File names, CSV/TSV/JSON/NPZ formats and folder structure follow the real corpora; only the number of clips, the
number of classes and the clip length are cut down (clips are short so that a recipe runs in seconds). Each
builder returns a ``Fixture`` recording what a correct data preparation must produce, so tests compare against
facts of the fixture rather than against numbers copied from a run.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf


@dataclasses.dataclass
class Fixture:
    root: Path
    classes: list[str]
    expected: dict = dataclasses.field(default_factory=dict)  # builder-specific facts, see each builder


def tone(sr: int, seconds: float, freq: float, seed: int, channels: int = 1) -> np.ndarray:
    """``[N, channels]`` float32: a class-specific tone plus a little seeded noise (so clips differ)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(sr * seconds))) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t)[:, None] + 0.02 * rng.standard_normal((t.size, channels))
    return x.astype(np.float32)


def write_audio(path: Path, sr: int, seconds: float, freq: float, seed: int, channels: int = 1,
                subtype: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".mp3": "MP3", ".ogg": "OGG"}[path.suffix]
    sf.write(str(path), tone(sr, seconds, freq, seed, channels), sr, format=fmt, subtype=subtype)


# ---------------------------------------------------------------------------------------------- AudioSet
AUDIOSET_CLASSES = [  # (mid, display_name): a display name with a comma and one with parentheses, as in the real file
    ("/m/09x0r", "Speech"),
    ("/m/05zppz", "Male speech, man speaking"),
    ("/m/04rlf", "Music"),
    ("/m/01b_21", "Cough (human)"),
]
AUDIOSET_NAMES = ["Speech", "Male_speech_man_speaking", "Music", "Cough_(human)"]


def _ytid(i: int, tag: str) -> str:
    # Real YTIDs are 11 characters of [A-Za-z0-9_-], and may start with "-".
    return f"-{tag}{i:03d}_xyzAB"


def make_audioset(root: Path, sr: int = 16000, seconds: float = 1.0) -> Fixture:
    """class_labels_indices.csv, the three segment CSVs (three comment lines, quoted label lists) and audio/.

    Audio is named in the different ways downloads do (``Y<YTID>.wav``, ``<YTID>_<start>.flac``,
    ``<YTID>_<start>_<end>.mp3``) under per-split sub-folders; one balanced, one unbalanced and one eval segment
    have no audio, one balanced file is corrupt, and one unlisted file stands for extra pre-training audio.
    ``expected`` holds ``{"sets": {name: {utt_id: set(labels)}}, "missing": {name: set(ytid)}, "unreadable": ...}``.
    """
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "class_labels_indices.csv", "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        w.writerow(["index", "mid", "display_name"])
        for i, (mid, name) in enumerate(AUDIOSET_CLASSES):
            f.write(f'{i},{mid},"{name}"\n')
    mids = [m for m, _ in AUDIOSET_CLASSES]
    label_sets = [[0], [0, 1], [2], [2, 3], [0, 2], [3]]  # single- and multi-label segments
    namings = ["Y{ytid}.wav", "{ytid}_{start}.flac", "{ytid}_{start_int}_{end_int}.mp3"]
    expected = {"sets": {"balanced_train": {}, "unbalanced_train": {}, "eval": {}}, "missing": {}, "unreadable": {}}
    seed = 0
    for split, n, missing_at, corrupt_at in (("balanced_train", 6, 2, 4), ("unbalanced_train", 6, 5, None),
                                              ("eval", 4, 1, None)):
        lines = [
            "# Segments csv created Sun Mar  5 10:54:31 2017",
            f"# num_ytids={n}, num_segs={n}, num_unique_labels={len(mids)}, num_positive_labels=9",
            "# YTID, start_seconds, end_seconds, positive_labels",
        ]
        expected["missing"][split] = set()
        expected["unreadable"][split] = set()
        for i in range(n):
            ytid = _ytid(i, {"balanced_train": "b", "unbalanced_train": "u", "eval": "e"}[split])
            start = 10.0 * (i + 1)
            labels = label_sets[i % len(label_sets)]
            lines.append(f'{ytid}, {start:.3f}, {start + 10:.3f}, "{",".join(mids[k] for k in labels)}"')
            if i == missing_at:
                expected["missing"][split].add(ytid)
                continue
            name = namings[i % len(namings)].format(ytid=ytid, start=f"{start:.3f}", start_int=int(start),
                                                    end_int=int(start + 10))
            path = root / "audio" / split / name
            if i == corrupt_at:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"RIFF\x00\x00not really a wave file")
                expected["unreadable"][split].add(str(path))
                continue
            seed += 1
            write_audio(path, sr, seconds, 300.0 + 500.0 * labels[0], seed)
            expected["sets"][split][f"Y{ytid}"] = {AUDIOSET_NAMES[k] for k in labels}
        (root / CSV_NAME[split]).write_text("\n".join(lines) + "\n")
    write_audio(root / "audio" / "extra" / "my_own_recording.flac", sr, seconds, 800.0, 999)
    expected["extra"] = {"extra-my_own_recording"}
    return Fixture(root, AUDIOSET_NAMES, expected)


CSV_NAME = {"balanced_train": "balanced_train_segments.csv", "unbalanced_train": "unbalanced_train_segments.csv",
            "eval": "eval_segments.csv"}


# ---------------------------------------------------------------------------------------------- ESC-50
ESC50_CATEGORIES = [(0, "dog"), (10, "rain"), (41, "chainsaw")]  # (target, category) as in the real meta file


def make_esc50(root: Path, per_fold: int = 2, sr: int = 44100, seconds: float = 0.5) -> Fixture:
    """``meta/esc50.csv`` + ``audio/<fold>-<src>-<take>-<target>.wav``: ``per_fold`` clips per category per fold.

    ``expected["folds"]`` maps fold -> set of utterance ids.
    """
    (root / "meta").mkdir(parents=True, exist_ok=True)
    rows, folds = [], {k: set() for k in range(1, 6)}
    src = 100032
    for fold in range(1, 6):
        for target, category in ESC50_CATEGORIES:
            for take in "AB"[:per_fold]:
                src += 7
                name = f"{fold}-{src}-{take}-{target}.wav"
                write_audio(root / "audio" / name, sr, seconds, 200.0 + 40.0 * target, src)
                rows.append([name, fold, target, category, str(target in (0, 10, 41)), src, take])
                folds[fold].add(name[:-4])
    with open(root / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    return Fixture(root, [c for _, c in ESC50_CATEGORIES], {"folds": folds})


# ---------------------------------------------------------------------------------------------- Speech Commands
def make_speechcommands(root: Path, words=("yes", "no", "up"), speakers: int = 5, sr: int = 16000) -> Fixture:
    """Word folders of ``<speaker>_nohash_<n>.wav`` (some clips shorter than 1 s), the two lists, noise folder.

    Speaker 0 goes to validation, speaker 1 to testing (the real lists also split by speaker).
    ``expected`` = ``{"train"|"valid"|"test": {utt_id: (word, speaker)}, "noise": set(ids)}``.
    """
    root.mkdir(parents=True, exist_ok=True)
    expected = {"train": {}, "valid": {}, "test": {}}
    lists = {"valid": [], "test": []}
    for w_i, word in enumerate(words):
        for s in range(speakers):
            spk = f"{0xa1b2c3d0 + s:08x}"
            for n in range(2 if s >= 2 else 1):
                seconds = 1.0 if n == 0 else 0.7  # real corpus has clips shorter than 1 s
                rel = f"{word}/{spk}_nohash_{n}.wav"
                write_audio(root / rel, sr, seconds, 300.0 + 400.0 * w_i, w_i * 100 + s * 10 + n)
                split = {0: "valid", 1: "test"}.get(s, "train")
                if split != "train":
                    lists[split].append(rel)
                expected[split][f"{spk}_{word}_{n}"] = (word, spk)
    (root / "validation_list.txt").write_text("".join(f"{r}\n" for r in lists["valid"]))
    (root / "testing_list.txt").write_text("".join(f"{r}\n" for r in lists["test"]))
    write_audio(root / "_background_noise_" / "white_noise.wav", sr, 3.0, 50.0, 7)
    write_audio(root / "_background_noise_" / "running_tap.wav", sr, 2.0, 60.0, 8)
    (root / "_background_noise_" / "README.md").write_text("noise recordings\n")
    (root / "LICENSE").write_text("CC-BY-4.0\n")
    expected["noise"] = {"white_noise", "running_tap"}
    return Fixture(root, sorted(words), expected)


# ---------------------------------------------------------------------------------------------- OpenMIC-2018
OPENMIC_CLASSES = ["accordion", "drums", "guitar", "voice"]


def make_openmic(root: Path, n_train: int = 12, n_test: int = 4, sr: int = 44100, seconds: float = 0.5) -> Fixture:
    """``openmic-2018.npz`` (X, Y_true, Y_mask, sample_key), ``class-map.json``, ``partitions/split01_*.csv``,
    ``audio/<key[:3]>/<key>.ogg``. Each clip has two or three annotated instruments (the rest unknown), with
    confidences on both sides of 0.5 and exactly 0.5 (not a positive); every fourth clip has no positive.
    ``expected[key] = (positives, known)`` as sets of class names; ``expected["train"]``/``["test"]`` key lists.
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    c = len(OPENMIC_CLASSES)
    keys = [f"{100000 + 37 * i:06d}_{3840 * (i % 5)}" for i in range(n_train + n_test)]
    y_true = np.full((len(keys), c), 0.5, dtype=np.float32)  # unannotated entries hold 0.5 in the real file
    y_mask = np.zeros((len(keys), c), dtype=bool)
    expected = {}
    for i, key in enumerate(keys):
        known = [(i + j) % c for j in range(2 + i % 2)]
        for j, k in enumerate(known):
            y_mask[i, k] = True
            # every fourth clip has no positive among its annotated instruments
            y_true[i, k] = [0.9, 0.1, 0.5, 0.75][(i + j) % 4] if i % 4 != 3 else [0.1, 0.5, 0.0][j]
        pos = {OPENMIC_CLASSES[k] for k in known if y_true[i, k] > 0.5}
        expected[key] = (pos, {OPENMIC_CLASSES[k] for k in known})
        write_audio(root / "audio" / key[:3] / f"{key}.ogg", sr, seconds, 200.0 + 300.0 * known[0], i)
    np.savez(root / "openmic-2018.npz", X=rng.standard_normal((len(keys), 10, 128)).astype(np.float32),
             Y_true=y_true, Y_mask=y_mask, sample_key=np.array(keys))
    (root / "class-map.json").write_text(json.dumps({n: i for i, n in enumerate(OPENMIC_CLASSES)}))
    (root / "partitions").mkdir(exist_ok=True)
    (root / "partitions" / "split01_train.csv").write_text("".join(f"{k}\n" for k in keys[:n_train]))
    (root / "partitions" / "split01_test.csv").write_text("".join(f"{k}\n" for k in keys[n_train:]))
    expected["train"], expected["test"] = keys[:n_train], keys[n_train:]
    return Fixture(root, OPENMIC_CLASSES, expected)


# ---------------------------------------------------------------------------------------------- DCASE2019 1A
DCASE_SCENES = ["airport", "metro_station", "park"]
DCASE_CITIES = ["barcelona", "helsinki", "lisbon", "london", "paris"]


def make_dcase2019(root: Path, sr: int = 48000, seconds: float = 0.5) -> Fixture:
    """``audio/<scene>-<city>-<loc>-<segment>-a.wav`` (48 kHz, 24-bit, stereo), ``meta.csv`` and
    ``evaluation_setup/fold1_{train,evaluate,test}.csv`` (tab-separated). Per scene: five training locations of
    two segments each, one evaluation location of two segments.
    ``expected = {"train_locations": {utt: "scene/identifier"}, "test": set(utt)}``.
    """
    (root / "evaluation_setup").mkdir(parents=True, exist_ok=True)
    meta, train, evaluate, locs = [], [], [], {}
    for s_i, scene in enumerate(DCASE_SCENES):
        for l_i, city in enumerate(DCASE_CITIES + ["milan"]):
            loc = f"{city}-{100 * (s_i + 1) + l_i}"
            for seg in range(2):
                name = f"audio/{scene}-{loc}-{seg * 10000}-a.wav"
                write_audio(root / name, sr, seconds, 250.0 + 350.0 * s_i, s_i * 100 + l_i * 10 + seg, channels=2,
                            subtype="PCM_24")
                meta.append((name, scene, loc, "a"))
                (evaluate if city == "milan" else train).append((name, scene))
                if city != "milan":
                    locs[os.path.basename(name)[:-4]] = f"{scene}/{loc}"

    def write(path, header, rows):
        with open(path, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)

    write(root / "meta.csv", ["filename", "scene_label", "identifier", "source_label"], meta)
    write(root / "evaluation_setup" / "fold1_train.csv", ["filename", "scene_label"], train)
    write(root / "evaluation_setup" / "fold1_evaluate.csv", ["filename", "scene_label"], evaluate)
    write(root / "evaluation_setup" / "fold1_test.csv", ["filename"], [(n,) for n, _ in evaluate])
    return Fixture(root, DCASE_SCENES, {"train_locations": locs,
                                        "test": {os.path.basename(n)[:-4] for n, _ in evaluate}})


# ---------------------------------------------------------------------------------------------- running recipes
REPO = Path(__file__).resolve().parents[2]


def link_recipe(name: str, dest: Path) -> Path:
    """A working copy of ``egs/<name>`` under ``dest/egs/<name>``: every file and folder of the recipe linked, so
    ``data/``, ``exp/`` and ``dump/`` land in ``dest`` while the scripts stay the repository's own.

    Returns the recipe folder to run in."""
    egs = dest / "egs"
    egs.mkdir(parents=True, exist_ok=True)
    # path.sh finds the repository two levels above the recipe: give dest the parts it looks for there.
    for shared in ("egs/TEMPLATE", "utils", "tools"):
        if not (dest / shared).exists():
            (dest / shared).symlink_to(REPO / shared, target_is_directory=True)
    # Downstream run.sh files name ../audioset/conf/pretrain_base.yaml (pre-training in place, with --init "").
    (egs / "audioset").mkdir(exist_ok=True)
    if not (egs / "audioset" / "conf").exists():
        (egs / "audioset" / "conf").symlink_to(REPO / "egs" / "audioset" / "conf", target_is_directory=True)
    work = egs / name
    work.mkdir(exist_ok=True)
    for entry in (REPO / "egs" / name).iterdir():
        if entry.name in ("data", "exp", "dump") or (work / entry.name).exists():
            continue
        (work / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return work


def mini_work_copy(tmp: Path) -> Path:
    """A working copy of egs/mini whose data, features, audio and experiments all stay under ``tmp``; files already
    written in ``tmp/egs/mini`` (e.g. another cmd.sh) are kept instead of linked."""
    work = tmp / "egs" / "mini"
    # Folders a previous run in the repository may hold: create them here so link_recipe does not link them.
    for name in ("downloads", "data", "dump", "exp"):
        (work / name).mkdir(parents=True, exist_ok=True)
    return link_recipe("mini", tmp)


def run_script(args: list[str], cwd: Path, check: bool = True, env: dict | None = None, timeout: float = 300):
    """Run a recipe script with bash; on an unexpected exit status fail with its output (not just the code)."""
    import subprocess

    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(["bash", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


def check_run_sh_cli(work: Path, title: str, default: str, bad_option: str) -> None:
    """A recipe's run.sh: --help shows its title, one of its defaults and maskspec.sh's options; an unknown
    option (``bad_option x``) fails naming it, before any work (no data/ folder)."""
    proc = run_script(["run.sh", "--help"], work)
    assert title in proc.stdout and default in proc.stdout
    assert "--stop_stage" in proc.stdout  # the shared script's options follow
    proc = run_script(["run.sh", bad_option, "x"], work, check=False)
    assert proc.returncode != 0 and bad_option in proc.stderr and not (work / "data").exists()


def read_kv(path: Path) -> dict[str, str]:
    """``{key: rest of line}`` of a data-directory file (value '' when the line is only a key)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition(" ")
        out[key] = value.strip()
    return out


def read_labels(path: Path) -> dict[str, set[str]]:
    return {k: set(filter(None, v.split(","))) for k, v in read_kv(path).items()}


def assert_sorted_c(path: Path) -> None:
    keys = [line.split(" ")[0].encode() for line in Path(path).read_text().splitlines()]
    assert keys == sorted(keys), f"{path} is not sorted in C order"
    assert len(keys) == len(set(keys)), f"{path} has duplicate keys"


# ---------------------------------------------------------------------------------------------- LibriSpeech
LIBRISPEECH_WORDS = ["HELLO", "WORLD", "THE", "CAT", "SAT", "ON", "MAT", "DON'T", "STOP"]


def make_librispeech(root: Path, speakers=(19, 103), chapters: int = 2, per_chapter: int = 2,
                     subsets=("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"),
                     sr: int = 16000) -> Fixture:
    """``LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac`` and one
    ``<speaker>-<chapter>.trans.txt`` per chapter (upper-case words, an apostrophe), as the unpacked archives.

    Utterances last 1.2-2.0 s; ``expected["sets"]`` holds ``{set name: {utt: transcript}}`` and
    ``expected["spk"]`` ``{utt: speaker}``.
    """
    rng = np.random.default_rng(0)
    expected = {"sets": {}, "spk": {}}
    for s, subset in enumerate(subsets):
        texts = {}
        for speaker in speakers:
            spk = speaker + 1000 * s  # other speakers in each subset, as in the corpus
            for c in range(chapters):
                chapter = 100 + 7 * c + s
                folder = root / "LibriSpeech" / subset / str(spk) / str(chapter)
                lines = []
                for n in range(per_chapter):
                    utt = f"{spk}-{chapter}-{n:04d}"
                    words = " ".join(rng.choice(LIBRISPEECH_WORDS, size=int(rng.integers(2, 5))))
                    write_audio(folder / f"{utt}.flac", sr, float(rng.uniform(1.2, 2.0)), 200 + 50 * n, seed=len(texts))
                    lines.append(f"{utt} {words}\n")
                    texts[utt] = words
                    expected["spk"][utt] = str(spk)
                (folder / f"{spk}-{chapter}.trans.txt").write_text("".join(lines))
        expected["sets"][subset.replace("-", "_")] = texts
    return Fixture(root, [], expected)


# ---------------------------------------------------------------------------------------------- tiny settings
# Features and a model small enough that every stage of a recipe runs in seconds on a CPU: 16 kHz, 32 mel bins
# (two patch rows), a one-layer 32-wide encoder. The recipes' own fine-tuning configs are used, with the sizes
# and schedule overridden (TINY_FINETUNE_ARGS), so the tests also check that those configs are accepted.
TINY_FBANK = """sample_rate: 16000
num_mel_bins: 32
frame_length: 25.0
frame_shift: 10.0
low_freq: 20.0
high_freq: 0.0
preemphasis_coefficient: 0.97
window_type: hanning
htk_compat: true
dither: 0.0
use_energy: false
remove_dc_offset: true
log_offset: 0.0
expect_channels: null
min_duration: 0.0
"""
TINY_PRETRAIN = """model: tiny
model_conf: {embed_dim: 32, depth: 1, num_heads: 2, decoder_embed_dim: 32, decoder_depth: 1, decoder_num_heads: 2}
num_frames: 96
mask_ratio: 0.75
normalize: per_bin
epochs: 1
batch_size: 4
lr: 1.0e-3
amp: fp32
num_workers: 0
pin_memory: false
log_interval: 1
keep_checkpoints: 1
num_images: 0
tensorboard: false
seed: 0
"""


def tiny_finetune_args(num_frames: int, patch_drop: int = 0) -> str:
    """--finetune_args shrinking a recipe's fine-tuning config to one CPU epoch of the tiny model."""
    return (f"--epochs 1 --warmup_epochs 0 --batch_size 4 --effective_batch_size none --num_frames {num_frames} "
            f"--patch_drop {patch_drop} --freqm 4 --timem 8 --time_shift 2 --samples_per_epoch 0 "
            f"--num_workers 0 --pin_memory false --log_interval 1 --tensorboard false --amp fp32")


def write_tiny_configs(dest: Path) -> dict[str, Path]:
    dest.mkdir(parents=True, exist_ok=True)
    paths = {"fbank": dest / "fbank_tiny.yaml", "pretrain": dest / "pretrain_tiny.yaml"}
    paths["fbank"].write_text(TINY_FBANK)
    paths["pretrain"].write_text(TINY_PRETRAIN)
    return paths


def recipe_args(db_root: Path, configs: dict[str, Path], *extra: str) -> list[str]:
    """Options every recipe test passes: corpus root, tiny features, one job at a time, CPU."""
    return ["--local_data_opts", f"--db_root {db_root} --nj 1", "--fbank_config", str(configs["fbank"]),
            "--nj", "1", "--ngpu", "0", *extra]


_SHARED: dict[str, tuple] = {}


def shared_audioset_run(tmp_path_factory) -> tuple[Fixture, Path, object]:
    """The AudioSet recipe run once per test session, stages 1-5 (pre-training included) with the tiny settings.

    Its stage-3 model (``exp/pretrain_tiny/model.pt``) is the ``--init`` of every downstream recipe test, as the
    AudioSet checkpoint is for the real recipes. Returns ``(fixture, recipe dir, completed process)``.
    """
    key = str(tmp_path_factory.getbasetemp())
    if key not in _SHARED:
        tmp = tmp_path_factory.mktemp("audioset_recipe")
        fx = make_audioset(tmp / "audioset")
        configs = write_tiny_configs(tmp / "conf")
        work = link_recipe("audioset", tmp)
        proc = run_script(["run.sh", *recipe_args(fx.root, configs, "--pretrain_config", str(configs["pretrain"]),
                                                  "--finetune_args", tiny_finetune_args(96, 4))], work)
        _SHARED[key] = (fx, work, proc, configs)
    return _SHARED[key][:3]


def shared_init(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """``(stage-3 model of the shared AudioSet run, tiny configs)``."""
    shared_audioset_run(tmp_path_factory)
    _, work, _, configs = _SHARED[str(tmp_path_factory.getbasetemp())]
    return work / "exp" / "pretrain_tiny" / "model.pt", configs
