"""utils/make_fbank.sh --reuse_from, what stage 2 of maskspec.sh builds on: which utterances count as the same
(id, wav.scp entry, segments line, fbank.yaml) and take their feature lines from another data directory."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from fixtures import REPO, TINY_FBANK, read_kv, write_audio

MAKE_FBANK = REPO / "utils" / "make_fbank.sh"


def make_fbank(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(MAKE_FBANK), "--nj", "1", *map(str, args)], capture_output=True, text=True)


def data_dir(path: Path, wavs: dict[str, str], segments: list[str] | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in sorted(wavs.items())))
    if segments:
        (path / "segments").write_text("".join(f"{line}\n" for line in sorted(segments)))
    return path


def test_reuse_only_what_is_the_same(tmp_path):
    audio = {u: tmp_path / "audio" / f"{u}.wav" for u in "abc"}
    for i, (u, p) in enumerate(audio.items()):
        write_audio(p, 16000, 0.6, 300.0 + 100 * i, i)
    conf = tmp_path / "fbank.yaml"
    conf.write_text(TINY_FBANK)
    pool = tmp_path / "pool"
    first = data_dir(tmp_path / "first", {"a": audio["a"], "b": audio["b"], "r": audio["c"]},
                     ["a_1 a 0.0 0.3", "a_2 a 0.3 -1", "b_1 b 0.0 0.3", "r_1 r 0.1 0.5"])
    proc = make_fbank("--fbank_config", conf, "--name", "first.1", first, first / "log", pool)
    assert proc.returncode == 0, proc.stderr

    # Same: a_1 and b_1. Not the same: a_2 (other end time), r_1 (recording r is another file here), c_1 (new).
    second = data_dir(tmp_path / "second", {"a": audio["a"], "b": audio["b"], "r": audio["a"], "c": audio["c"]},
                      ["a_1 a 0.0 0.3", "a_2 a 0.3 0.6", "b_1 b 0.0 0.3", "r_1 r 0.1 0.5", "c_1 c 0.0 0.2"])
    proc = make_fbank("--fbank_config", conf, "--name", "second.1", "--reuse_from", first, second, second / "log", pool)
    assert proc.returncode == 0, proc.stderr
    assert "reusing the features of 2 of 5 utterances" in proc.stderr
    assert "computing fbank of 3 utterances" in proc.stderr
    feats, frames = read_kv(second / "feats.scp"), read_kv(second / "utt2num_frames")
    old = read_kv(first / "feats.scp")
    assert {u for u in feats if feats[u] == old.get(u)} == {"a_1", "b_1"}
    assert all("raw_fbank_second.1." in feats[u] for u in ("a_2", "r_1", "c_1"))
    assert frames["a_1"] == read_kv(first / "utt2num_frames")["a_1"] and set(frames) == set(feats)
    assert set(read_kv(second / "utt2dur")) == set(feats)
    # the reused features are the first directory's, unchanged; the recomputed ones differ where the audio does
    import kaldiio

    def load(scp: Path) -> dict[str, np.ndarray]:
        with kaldiio.ReadHelper(f"scp:{scp}") as reader:
            return {k: np.array(v) for k, v in reader}

    a, b = load(first / "feats.scp"), load(second / "feats.scp")
    np.testing.assert_array_equal(a["a_1"], b["a_1"])
    assert not np.array_equal(a["r_1"], b["r_1"])
    check = subprocess.run([str(REPO / "utils" / "validate_data_dir.sh"), "--no-labels", str(second)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr

    # other fbank settings (here the storage dtype, recorded in fbank.yaml): nothing is reused
    third = data_dir(tmp_path / "third", {"a": audio["a"]}, ["a_1 a 0.0 0.3"])
    proc = make_fbank("--fbank_config", conf, "--dtype", "float16", "--name", "third.1", "--reuse_from",
                      f"{second} {first}", third, third / "log", pool)
    assert proc.returncode == 0, proc.stderr
    assert "not reusing" in proc.stderr and "computing fbank of 1 utterances" in proc.stderr

    # a directory without features cannot be a source
    proc = make_fbank("--fbank_config", conf, "--reuse_from", tmp_path / "audio", third)
    assert proc.returncode != 0 and f"no {tmp_path / 'audio'}/feats.scp" in proc.stderr
