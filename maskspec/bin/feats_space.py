"""Will the features fit? Bytes the fbank features of data directories will take, against the free space.

e.g.: python -m maskspec.bin.feats_space --fbank_config conf/fbank.yaml --filetype ark --dtype float16 \\
          --dir dump/fbank_pool --feats_root dump/fbank data/train_2m data/eval

Stage 2 of egs/TEMPLATE/maskspec.sh runs this before extracting (skip with ``--check_space false``). The clips
counted are the distinct utterance ids of the data directories, less those that a complete set under
``--feats_root`` (one with ``.done`` and ``feats.scp``) already has: what stage 2 will compute. Each clip's
frames follow from its ``utt2dur`` and the fbank settings (``FbankConfig.num_frames``); its bytes are frames x
mel bins x dtype size plus the per-clip overhead of the storage format, measured by writing two small matrices
with the real writer. Exit status 1, with a message saying how much is needed and free, when the file system
of ``--dir`` has less free space than that; a data directory without ``utt2dur`` is left out with a warning.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

from maskspec.data.datadir import DataDirError, iter_kv
from maskspec.data.feats import DTYPES, FILETYPES, FeatWriter
from maskspec.features.fbank import FbankConfig

PROG = "feats_space.py"


def clip_overhead(filetype: str, dtype: str, feat_dim: int, key: str) -> int:
    """Bytes one more clip adds to a feature file beyond its samples (key, headers), measured by writing."""
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2):
            prefix = os.path.join(tmp, f"probe{n}")
            with FeatWriter(prefix, filetype, dtype) as w:
                for i in range(n):
                    w.write(f"{key[:-1]}{i}", np.zeros((10, feat_dim), np.float32))
            sizes.append(os.path.getsize(w.data_path))
    return max(0, sizes[1] - sizes[0] - 10 * feat_dim * np.dtype(dtype).itemsize)


def clips_to_compute(data_dirs: list[str], feats_root: str | None) -> tuple[dict[str, float], list[str]]:
    """({utterance id: seconds} still without features, data dirs left out for lack of utt2dur)."""
    have: set[str] = set()
    if feats_root and os.path.isdir(feats_root):
        for name in sorted(os.listdir(feats_root)):
            d = os.path.join(feats_root, name)
            if os.path.isfile(os.path.join(d, ".done")) and os.path.isfile(os.path.join(d, "feats.scp")):
                with open(os.path.join(d, "feats.scp"), encoding="utf-8") as f:
                    have.update(line.split(maxsplit=1)[0] for line in f if line.strip())
    durations: dict[str, float] = {}
    skipped = []
    for d in data_dirs:
        path = os.path.join(d, "utt2dur")
        if not os.path.isfile(path):
            skipped.append(d)
            continue
        for lineno, utt, value in iter_kv(path):
            if utt in have or utt in durations:
                continue
            try:
                durations[utt] = float(value)
            except ValueError:
                raise DataDirError(f"{path}:{lineno}: duration of '{utt}' is not a number: {value!r}") from None
    return durations, skipped


def estimate_bytes(durations, cfg: FbankConfig, filetype: str, dtype: str) -> int:
    """Bytes of the features of clips of ``durations`` seconds (an iterable)."""
    seconds = np.fromiter(durations, dtype=np.float64)
    samples = np.maximum(np.round(seconds * cfg.sample_rate), cfg.min_samples)
    frames = np.maximum(0, cfg.num_frames(samples))  # Kaldi or centred framing
    per_frame = cfg.feat_dim * np.dtype(dtype).itemsize
    key = "Y" + "x" * 11  # an AudioSet-length utterance id; the key is part of an ark's per-clip bytes
    return int(frames.sum() * per_frame + len(seconds) * clip_overhead(filetype, dtype, cfg.feat_dim, key))


def free_bytes(path: str) -> tuple[int, str]:
    """(bytes available to this user, the existing folder measured) on the file system of ``path``."""
    probe = os.path.abspath(path)
    while not os.path.isdir(probe):
        probe = os.path.dirname(probe)
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize, probe


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fbank_config", required=True, help="fbank settings (YAML)")
    parser.add_argument("--filetype", choices=FILETYPES, default="ark")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--dir", required=True, help="where the feature files go (need not exist yet)")
    parser.add_argument("--feats_root", help="complete sets here (.done + feats.scp) already have their clips")
    parser.add_argument("data_dirs", nargs="+", help="data directories with utt2dur")
    args = parser.parse_args(argv)
    try:
        cfg = FbankConfig.from_yaml(args.fbank_config)
        durations, skipped = clips_to_compute(args.data_dirs, args.feats_root)
    except (DataDirError, OSError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    for d in skipped:
        print(f"{PROG}: warning: no {d}/utt2dur: its clips are not counted", file=sys.stderr)
    need = estimate_bytes(durations.values(), cfg, args.filetype, args.dtype)
    free, where = free_bytes(args.dir)
    hours = sum(durations.values()) / 3600
    print(f"{PROG}: features of {len(durations)} clips ({hours:.1f} h of audio, {args.filetype} {args.dtype}, "
          f"{cfg.feat_dim} bins every {cfg.frame_shift:g} ms) will take about {gb(need)} in {args.dir}; "
          f"{gb(free)} free there", file=sys.stderr)
    if need > free:
        print(f"{PROG}: error: not enough space for the features: {gb(need)} needed, {gb(free)} free on the file "
              f"system of {where}. Free space there, point --dumpdir at a larger disk, store float16 "
              f"(--feats_dtype float16 halves it), or skip this check with --check_space false.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
