import logging
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from audio_helpers import REPO, direct_fbank
from maskspec.bin.compute_fbank import main
from maskspec.data.datadir import read_kv
from maskspec.data.feats import FeatWriter, load_feat
from maskspec.features.fbank import FbankConfig, compute_fbank


def write_scp(path, entries: dict) -> str:
    with open(path, "w") as f:
        f.writelines(f"{k} {v}\n" for k, v in entries.items())
    return str(path)


def outputs(prefix: str) -> list[str]:
    """Files and leftovers of a job under ``prefix`` (temporary files are hidden ``.name.*.tmp``)."""
    folder, base = os.path.split(prefix)
    return sorted(f for f in os.listdir(folder) if f.startswith(base) or f.startswith("." + base))


@pytest.mark.parametrize("filetype", ["ark", "hdf5"])
def test_round_trip_equals_direct_torchaudio(tmp_path, wav_factory, filetype):
    a, wave_a = wav_factory("a.wav", sr=16000, seconds=1.2)
    b, wave_b = wav_factory("b.flac", sr=16000, seconds=0.7, channels=2, fmt="FLAC")
    scp = write_scp(tmp_path / "wav.scp", {"utt_a": a, "utt_b": b, "utt_c": f"cat {a} |"})
    prefix = str(tmp_path / "out" / "raw.1")
    assert main(["--wav_scp", scp, "--out_prefix", prefix, "--filetype", filetype]) == 0
    ext = "ark" if filetype == "ark" else "h5"
    assert outputs(prefix) == [f"raw.1.{ext}", "raw.1.scp", "raw.1.utt2dur", "raw.1.utt2num_frames"]
    feats = read_kv(prefix + ".scp")
    assert list(feats) == ["utt_a", "utt_b", "utt_c"]
    refs = {
        "utt_a": direct_fbank(sf.read(a, dtype="float32")[0]),
        "utt_b": direct_fbank(sf.read(b, dtype="float32")[0].mean(axis=1)),
    }
    refs["utt_c"] = refs["utt_a"]
    for utt, ref in refs.items():
        mat = load_feat(feats[utt])
        assert mat.dtype == np.float32 and mat.shape == ref.shape
        np.testing.assert_allclose(mat, ref, atol=1e-4)
    assert read_kv(prefix + ".utt2num_frames") == {"utt_a": "118", "utt_b": "68", "utt_c": "118"}
    assert read_kv(prefix + ".utt2dur") == {"utt_a": "1.2000", "utt_b": "0.7000", "utt_c": "1.2000"}


@pytest.mark.parametrize("filetype", ["ark", "hdf5"])
def test_float16_storage_reads_back_as_float32(tmp_path, wav_factory, filetype):
    a, _ = wav_factory("a.wav", sr=22050, seconds=1.0, channels=2)
    wave = sf.read(a, dtype="float32")[0].T  # the 16-bit samples, not the float ones before writing
    scp = write_scp(tmp_path / "wav.scp", {"a": a})
    prefix = str(tmp_path / "raw.1")
    assert main(["--wav_scp", scp, "--out_prefix", prefix, "--filetype", filetype, "--dtype", "float16"]) == 0
    mat = load_feat(read_kv(prefix + ".scp")["a"])
    assert mat.dtype == np.float32
    np.testing.assert_allclose(mat, compute_fbank(wave, 22050, FbankConfig()), atol=2e-2)


def test_segments_and_config(tmp_path, wav_factory):
    a, _ = wav_factory("a.wav", sr=44100, seconds=3.0, channels=2)
    wave = sf.read(a, dtype="float32")[0].T
    scp = write_scp(tmp_path / "wav.scp", {"rec1": a, "rec2": f"cat {a} |"})
    segments = write_scp(
        tmp_path / "segments", {"s1": "rec1 0.0 1.0", "s2": "rec1 1.5 -1", "s3": "rec2 0.25 2.75"}
    )
    conf = tmp_path / "fbank.yaml"
    conf.write_text("sample_rate: 32000\nnum_mel_bins: 64\nhigh_freq: 15000\nlow_freq: 0\nlog_offset: 1.0e-5\n")
    cfg = FbankConfig.from_yaml(conf)
    prefix = str(tmp_path / "raw.1")
    args = ["--config", str(conf), "--wav_scp", scp, "--segments", segments, "--out_prefix", prefix]
    assert main(args + ["--filetype", "hdf5"]) == 0
    feats = read_kv(prefix + ".scp")
    for utt, (first, last) in {"s1": (0, 44100), "s2": (66150, 132300), "s3": (11025, 121275)}.items():
        np.testing.assert_allclose(load_feat(feats[utt]), compute_fbank(wave[:, first:last], 44100, cfg), atol=1e-4)
    assert read_kv(prefix + ".utt2dur")["s3"] == "2.5000"


def test_written_config_is_complete(tmp_path):
    conf = tmp_path / "fbank.yaml"
    conf.write_text("num_mel_bins: 80\n")
    assert main(["--config", str(conf), "--write_config", str(tmp_path / "resolved.yaml")]) == 0
    assert FbankConfig.from_yaml(tmp_path / "resolved.yaml") == FbankConfig(num_mel_bins=80)
    assert len((tmp_path / "resolved.yaml").read_text().splitlines()) == len(FbankConfig().to_dict())


def _bad_inputs(tmp_path, wav_factory) -> dict[str, tuple[str, str]]:
    """name -> (wav.scp value, expected reason)."""
    good, _ = wav_factory("good.wav", sr=16000, seconds=1.0)
    data = open(good, "rb").read()
    stereo, _ = wav_factory("stereo.wav", sr=16000, seconds=0.5, channels=2)
    nan = np.full((1600, 1), 0.1, dtype=np.float32)
    nan[50] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1), np.float32), 16000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wave file" * 20)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "header.wav").write_bytes(data[:40])
    (tmp_path / "cut.wav").write_bytes(data[:5000])
    return {
        "unreadable": (str(tmp_path / "junk.wav"), "unreadable"),
        "empty": (str(tmp_path / "empty.wav"), "empty file"),
        "truncated_header": (str(tmp_path / "header.wav"), "unreadable"),
        "truncated_data": (str(tmp_path / "cut.wav"), "truncated"),
        "zero_length": (str(tmp_path / "zero.wav"), "zero-length"),
        "missing": (str(tmp_path / "missing.wav"), "no such file"),
        "failing_pipe": (f"cat {tmp_path}/missing.wav |", "exit status 1"),
        "wrong_channels": (stereo, "has 2 channels"),
        "nan": (str(tmp_path / "nan.wav"), "NaN or inf samples"),
    }


BAD_CASES = [
    "unreadable", "empty", "truncated_header", "truncated_data", "zero_length", "missing", "failing_pipe",
    "wrong_channels", "nan",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_fails_naming_utterance_and_file(tmp_path, wav_factory, caplog, case):
    spec, reason = _bad_inputs(tmp_path, wav_factory)[case]
    good = str(tmp_path / "good.wav")
    scp = write_scp(tmp_path / "wav.scp", {"a_good": good, "b_bad": spec, "c_good": good})
    conf = tmp_path / "mono.yaml"
    conf.write_text("expect_channels: 1\n")
    prefix = str(tmp_path / "out" / "raw.1")
    args = ["--config", str(conf), "--wav_scp", scp, "--out_prefix", prefix]
    assert main(args) == 1
    error = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR][-1]
    shown = spec.rstrip("| ").strip()
    assert "utterance 'b_bad'" in error and shown in error and reason in error, error
    assert outputs(prefix) == []  # nothing written, not even temporary files

    bad_list = tmp_path / "bad.txt"
    assert main(args + ["--skip_bad", "true", "--bad_list", str(bad_list)]) == 0
    assert list(read_kv(prefix + ".scp")) == ["a_good", "c_good"]
    lines = bad_list.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("b_bad ") and reason in lines[0]


def test_cli_exit_status_and_message(tmp_path, wav_factory):
    spec, _ = _bad_inputs(tmp_path, wav_factory)["truncated_data"]
    scp = write_scp(tmp_path / "wav.scp", {"broken": spec})
    proc = subprocess.run(
        [sys.executable, "-m", "maskspec.bin.compute_fbank", "--wav_scp", scp, "--out_prefix", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 1
    assert "ERROR: utterance 'broken': file '" + spec + "': truncated" in proc.stderr


def test_malformed_lists_name_file_and_line(tmp_path, wav_factory, caplog):
    a, _ = wav_factory("a.wav")
    scp = write_scp(tmp_path / "wav.scp", {"a": a})
    with open(scp, "a") as f:
        f.write(f"a {a}\n")
    assert main(["--wav_scp", scp, "--out_prefix", str(tmp_path / "o")]) == 1
    assert f"{scp}:2: duplicate key 'a'" in caplog.text
    scp = write_scp(tmp_path / "wav2.scp", {"a": a})
    segments = write_scp(tmp_path / "segments", {"s1": "a 0 0.5", "s2": "b 0 1"})
    assert main(["--wav_scp", scp, "--segments", segments, "--out_prefix", str(tmp_path / "o")]) == 1
    assert f"{segments}:2: recording 'b' of utterance 's2' is not in {scp}" in caplog.text


def test_exception_inside_writer_leaves_no_files(tmp_path, wav_factory, monkeypatch):
    a, _ = wav_factory("a.wav")
    scp = write_scp(tmp_path / "wav.scp", {f"u{i}": a for i in range(5)})
    real_write = FeatWriter.write

    def flaky_write(self, utt, mat):
        if utt == "u3":
            raise RuntimeError("disk full")
        real_write(self, utt, mat)

    monkeypatch.setattr(FeatWriter, "write", flaky_write)
    prefix = str(tmp_path / "out" / "raw.1")
    with pytest.raises(RuntimeError, match="disk full"):
        main(["--wav_scp", scp, "--out_prefix", prefix])
    assert outputs(prefix) == []


def test_killed_job_leaves_no_files(tmp_path, wav_factory):
    a, _ = wav_factory("a.wav", seconds=0.5)
    scp = write_scp(tmp_path / "wav.scp", {f"u{i:04d}": a for i in range(2000)})
    prefix = str(tmp_path / "out" / "raw.1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "maskspec.bin.compute_fbank", "--wav_scp", scp, "--out_prefix", prefix,
         "--log_every", "1"],
        stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    for line in proc.stderr:  # wait until the job is writing
        if " 5/2000 utterances" in line:
            break
    proc.send_signal(signal.SIGTERM)
    proc.stderr.read()
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert outputs(prefix) == []


def test_rerun_replaces_outputs(tmp_path, wav_factory):
    a, _ = wav_factory("a.wav")
    b, _ = wav_factory("b.wav", seconds=2.0)
    prefix = str(tmp_path / "raw.1")
    assert main(["--wav_scp", write_scp(tmp_path / "w1.scp", {"a": a, "b": b}), "--out_prefix", prefix]) == 0
    assert main(["--wav_scp", write_scp(tmp_path / "w2.scp", {"b": b}), "--out_prefix", prefix]) == 0
    assert read_kv(prefix + ".utt2num_frames") == {"b": "198"}
    assert load_feat(read_kv(prefix + ".scp")["b"]).shape == (198, 128)
    assert outputs(prefix) == ["raw.1.ark", "raw.1.scp", "raw.1.utt2dur", "raw.1.utt2num_frames"]
