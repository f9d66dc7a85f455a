import os
import subprocess

import numpy as np
import pytest
import soundfile as sf

from audio_helpers import REPO, UTILS, make_wav
from maskspec.data.datadir import read_kv
from maskspec.data.feats import load_feat
from maskspec.features.fbank import FbankConfig, compute_fbank

AST_CONF = str(REPO / "egs" / "TEMPLATE" / "conf" / "fbank_ast.yaml")


def make_fbank(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(UTILS / "make_fbank.sh"), *map(str, args)], capture_output=True, text=True)


def write_lines(path, lines) -> None:
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)


@pytest.fixture
def data_dir(tmp_path):
    """A data directory of five utterances in four formats and rates, one piped, with labels."""
    audio = tmp_path / "audio"
    audio.mkdir()
    make_wav(audio / "a.wav", sr=44100, seconds=1.0, channels=2)
    make_wav(audio / "b.flac", sr=16000, seconds=0.8, fmt="FLAC")
    make_wav(audio / "d.wav", sr=8000, seconds=1.5)
    make_wav(audio / "e.ogg", sr=48000, seconds=0.6, fmt="OGG")
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    wavs = {"a": f"{audio}/a.wav", "b": f"{audio}/b.flac", "c": f"cat {audio}/a.wav |", "d": f"{audio}/d.wav",
            "e": f"{audio}/e.ogg"}
    write_lines(data / "wav.scp", [f"{k} {v}" for k, v in wavs.items()])
    write_lines(data / "utt2label", [f"{k} {'dog' if k < 'c' else 'cat'}" for k in wavs])
    write_lines(data / "labels.txt", ["cat", "dog"])
    return data


def test_end_to_end_two_jobs_and_rerun(data_dir):
    proc = make_fbank("--nj", 2, "--fbank_config", AST_CONF, data_dir)
    assert proc.returncode == 0, proc.stderr
    feats = read_kv(data_dir / "feats.scp")
    assert list(feats) == ["a", "b", "c", "d", "e"]
    for utt in "abcde":
        spec = read_kv(data_dir / "wav.scp")[utt]
        path = spec.split()[1] if spec.endswith("|") else spec
        wave, sr = sf.read(path, dtype="float32", always_2d=True)
        np.testing.assert_allclose(load_feat(feats[utt]), compute_fbank(wave.T, sr, FbankConfig()), atol=1e-4)
    frames = read_kv(data_dir / "utt2num_frames")
    assert frames == {u: str(load_feat(feats[u]).shape[0]) for u in "abcde"}
    assert frames["a"] == "98" and frames["d"] == "148"
    assert read_kv(data_dir / "utt2dur")["d"] == "1.5000"
    assert FbankConfig.from_yaml(data_dir / "fbank.yaml") == FbankConfig()
    assert "filetype=ark dtype=float32" in (data_dir / "fbank.yaml").read_text()
    assert sorted(os.listdir(data_dir / "log")) == [
        "fbank_train.yaml", "make_fbank_train.1.log", "make_fbank_train.2.log", "split_train.2",
    ]
    assert sorted(os.listdir(data_dir / "data")) == [f"raw_fbank_train.{n}.{ext}" for n in (1, 2)
                                                     for ext in ("ark", "scp", "utt2dur", "utt2num_frames")]
    subprocess.run([str(UTILS / "validate_data_dir.sh"), str(data_dir)], check=True, capture_output=True)

    # complete and up to date: skipped, nothing rewritten
    stamp = os.stat(data_dir / "feats.scp").st_mtime_ns
    proc = make_fbank("--nj", 2, "--fbank_config", AST_CONF, data_dir)
    assert proc.returncode == 0 and "skipping" in proc.stderr
    assert os.stat(data_dir / "feats.scp").st_mtime_ns == stamp
    # another storage dtype, a newer wav.scp, or --overwrite: recomputed
    for extra in (["--dtype", "float16"], ["--overwrite", "true"]):
        proc = make_fbank("--nj", 1, "--fbank_config", AST_CONF, *extra, data_dir)
        assert proc.returncode == 0 and "skipping" not in proc.stderr, proc.stderr
    future = os.stat(data_dir / "feats.scp").st_mtime + 10
    os.utime(data_dir / "wav.scp", (future, future))
    proc = make_fbank("--nj", 1, "--fbank_config", AST_CONF, data_dir)
    assert proc.returncode == 0 and "skipping" not in proc.stderr
    assert list(read_kv(data_dir / "feats.scp")) == ["a", "b", "c", "d", "e"]
    # the outputs of the earlier two-job run are gone, not mixed in
    assert {f.split(".")[1] for f in os.listdir(data_dir / "data")} == {"1"}


def test_bad_utterance_fails_or_is_skipped(data_dir):
    (data_dir.parent.parent / "audio" / "broken.wav").write_bytes(b"RIFF" + b"\0" * 20)
    with open(data_dir / "wav.scp", "a") as f:
        f.write(f"f {data_dir.parent.parent}/audio/broken.wav\n")
    with open(data_dir / "utt2label", "a") as f:
        f.write("f cat\n")
    proc = make_fbank("--nj", 1, "--fbank_config", AST_CONF, data_dir)
    assert proc.returncode != 0
    assert "utterance 'f'" in proc.stderr and "broken.wav" in proc.stderr, proc.stderr
    assert not (data_dir / "feats.scp").exists()

    proc = make_fbank("--nj", 2, "--fbank_config", AST_CONF, "--skip_bad", "true", data_dir)
    assert proc.returncode == 0, proc.stderr
    bad = (data_dir / "log" / "bad_utts.txt").read_text().splitlines()
    assert len(bad) == 1 and bad[0].startswith("f ") and "broken.wav" in bad[0]
    for name in ("wav.scp", "utt2label", "feats.scp", "utt2num_frames", "utt2dur"):
        assert list(read_kv(data_dir / name)) == ["a", "b", "c", "d", "e"], name
    subprocess.run([str(UTILS / "validate_data_dir.sh"), str(data_dir)], check=True, capture_output=True)
    proc = make_fbank("--nj", 2, "--fbank_config", AST_CONF, "--skip_bad", "true", data_dir)
    assert proc.returncode == 0 and "skipping" in proc.stderr


def test_segments_hdf5_and_folders(tmp_path):
    make_wav(tmp_path / "r1.wav", sr=22050, seconds=2.0, channels=2)
    data = tmp_path / "dev"
    data.mkdir()
    write_lines(data / "wav.scp", [f"r1 {tmp_path}/r1.wav", f"r2 cat {tmp_path}/r1.wav |"])
    write_lines(data / "segments", ["r1-a r1 0.0 1.0", "r1-b r1 1.0 -1", "r2-a r2 0.5 1.5"])
    conf = tmp_path / "fbank.yaml"
    conf.write_text("sample_rate: 32000\nnum_mel_bins: 64\nlow_freq: 0\nhigh_freq: 15000\nlog_offset: 1.0e-5\n")
    proc = make_fbank("--nj", 2, "--fbank_config", conf, "--filetype", "hdf5", "--write_utt2dur", "false",
                      data, tmp_path / "logs", tmp_path / "feats")
    assert proc.returncode == 0, proc.stderr
    feats = read_kv(data / "feats.scp")
    assert list(feats) == ["r1-a", "r1-b", "r2-a"]
    assert all(f"{tmp_path}/feats/raw_fbank_dev." in v and ".h5:" in v for v in feats.values())
    assert len(os.listdir(tmp_path / "logs")) == 4  # 2 logs, resolved config, split folder
    assert not (data / "utt2dur").exists()
    wave, sr = sf.read(tmp_path / "r1.wav", dtype="float32", always_2d=True)
    ref = compute_fbank(wave[int(0.5 * sr):int(1.5 * sr)].T, sr, FbankConfig.from_yaml(conf))
    np.testing.assert_allclose(load_feat(feats["r2-a"]), ref, atol=1e-4)


def test_usage_errors(tmp_path, data_dir):
    assert make_fbank("--help").returncode == 0
    cases = [
        (["--nope", "1", data_dir], "unknown option --nope"),
        (["--fbank_config", AST_CONF, "--filetype", "npy", data_dir], "--filetype must be ark or hdf5"),
        (["--fbank_config", AST_CONF, "--skip_bad", "yes", data_dir], "takes \"true\" or \"false\""),
        (["--fbank_config", AST_CONF, tmp_path / "nowhere"], "no such file"),
        (["--fbank_config", tmp_path / "none.yaml", data_dir], "no such fbank config"),
        ([], "Usage"),
    ]
    for args, message in cases:
        proc = make_fbank(*args)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr)
    conf = tmp_path / "typo.yaml"
    conf.write_text("num_mel_bin: 64\n")
    proc = make_fbank("--fbank_config", conf, data_dir)
    assert proc.returncode != 0 and "unknown fbank setting 'num_mel_bin'" in proc.stderr
