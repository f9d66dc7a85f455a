import sys

import numpy as np
import pytest
import soundfile as sf

from maskspec.features.audio import AudioError, AudioReader, load_audio


def test_wav_mono_and_stereo_match_soundfile(wav_factory):
    for channels in (1, 2):
        path, _ = wav_factory(f"a{channels}.wav", sr=22050, seconds=0.5, channels=channels)
        wave, sr = load_audio(path)
        ref, ref_sr = sf.read(path, dtype="float32", always_2d=True)
        assert sr == ref_sr == 22050
        assert wave.dtype == np.float32 and wave.shape == (channels, 11025)
        np.testing.assert_array_equal(wave, ref.T)


@pytest.mark.parametrize("fmt,ext,atol", [("FLAC", "flac", 1e-4), ("OGG", "ogg", 0.1), ("MP3", "mp3", 0.2)])
def test_compressed_formats(wav_factory, fmt, ext, atol):
    path, ref = wav_factory(f"a.{ext}", sr=32000, seconds=1.0, channels=2, fmt=fmt)
    wave, sr = load_audio(path)
    assert sr == 32000 and wave.shape[0] == 2
    # lossy codecs delay/pad; compare the RMS, not sample by sample
    if fmt == "FLAC":
        np.testing.assert_allclose(wave, ref, atol=atol)
    else:
        assert abs(wave.shape[1] - ref.shape[1]) < 2000
        assert abs(np.sqrt((wave**2).mean()) - np.sqrt((ref**2).mean())) < atol


def test_segment_reads_the_right_samples(wav_factory):
    path, ref = wav_factory("a.wav", sr=16000, seconds=2.0, channels=2)
    wave, _ = load_audio(path, 0.5, 1.25)
    np.testing.assert_allclose(wave, ref[:, 8000:20000], atol=1e-4)
    wave, _ = load_audio(path, 1.5, None)
    assert wave.shape == (2, 8000)
    wave, _ = load_audio(path, 1.5, -1)
    assert wave.shape == (2, 8000)
    # a small overshoot (annotation rounding) is clipped to the end
    wave, _ = load_audio(path, 1.0, 2.3)
    assert wave.shape == (2, 16000)


def test_piped_command_equals_file(wav_factory):
    path, _ = wav_factory("a.wav", sr=8000, seconds=0.5)
    wave, sr = load_audio(f"cat {path} |")
    ref, _ = load_audio(path)
    assert sr == 8000
    np.testing.assert_array_equal(wave, ref)
    seg, _ = load_audio(f"cat {path} |", 0.1, 0.2)
    np.testing.assert_array_equal(seg, ref[:, 800:1600])


def test_python_one_liner_pipe():
    # a streaming writer: the stdlib wave module, no sox needed
    code = (
        "import sys, wave, struct, math; w = wave.open(sys.stdout.buffer, 'wb'); w.setnchannels(1); "
        "w.setsampwidth(2); w.setframerate(8000); w.setnframes(4000); "
        "w.writeframes(b''.join(struct.pack('<h', int(8000 * math.sin(i / 5))) for i in range(4000)))"
    )
    wave, sr = load_audio(f'{sys.executable} -c "{code}" |')
    assert sr == 8000 and wave.shape == (1, 4000)
    np.testing.assert_allclose(wave[0, :10], [int(8000 * np.sin(i / 5)) / 32768 for i in range(10)], atol=1e-6)


def test_reader_runs_a_command_once_for_consecutive_segments(tmp_path, wav_factory):
    path, _ = wav_factory("a.wav", sr=8000, seconds=1.0)
    counter = tmp_path / "count"
    reader = AudioReader()
    spec = f"echo run >> {counter}; cat {path} |"
    a, _ = reader(spec, 0.0, 0.5)
    b, _ = reader(spec, 0.5, 1.0)
    assert counter.read_text().count("run") == 1
    assert a.shape == b.shape == (1, 4000)


def _write_bytes(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def test_bad_inputs_name_the_file_and_reason(tmp_path, wav_factory):
    good, _ = wav_factory("good.wav", sr=16000, seconds=1.0)
    data = open(good, "rb").read()
    nan_wave = np.zeros((1600, 1), dtype=np.float32)
    nan_wave[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan_wave, 16000, subtype="FLOAT")
    inf_wave = np.zeros((1600, 1), dtype=np.float32)
    inf_wave[7] = np.inf
    sf.write(tmp_path / "inf.wav", inf_wave, 16000, subtype="FLOAT")
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1), dtype=np.float32), 16000)
    stereo, _ = wav_factory("stereo.wav", channels=2)
    cases = {
        str(tmp_path / "missing.wav"): "no such file",
        _write_bytes(tmp_path / "empty.wav", b""): "empty file",
        _write_bytes(tmp_path / "junk.wav", b"this is not audio at all" * 10): "unreadable",
        _write_bytes(tmp_path / "head.wav", data[:30]): "unreadable",
        _write_bytes(tmp_path / "cut.wav", data[: len(data) // 2]): "truncated",
        str(tmp_path / "zero.wav"): "zero-length",
        str(tmp_path / "nan.wav"): "NaN or inf samples (first at sample 100)",
        str(tmp_path / "inf.wav"): "NaN or inf samples (first at sample 7)",
        str(tmp_path): "is a directory",
    }
    for spec, reason in cases.items():
        with pytest.raises(AudioError) as err:
            load_audio(spec)
        assert f"file '{spec}'" in str(err.value) and reason in str(err.value), str(err.value)
    with pytest.raises(AudioError, match="has 2 channels, the fbank config expects 1"):
        load_audio(stereo, expect_channels=1)
    assert load_audio(stereo, expect_channels=2)[0].shape[0] == 2


def test_truncated_flac_is_an_error(tmp_path, wav_factory):
    path, _ = wav_factory("a.flac", sr=16000, seconds=2.0, fmt="FLAC")
    data = open(path, "rb").read()
    cut = _write_bytes(tmp_path / "cut.flac", data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"file '.*cut.flac': (truncated|corrupt)"):
        load_audio(cut)


def test_bad_segments(wav_factory):
    path, _ = wav_factory("a.wav", sr=16000, seconds=1.0)
    for start, end, reason in [(1.5, 2.0, "after the end"), (0.2, 1.8, "past the end"), (0.5, 0.5, "not after")]:
        with pytest.raises(AudioError, match=reason):
            load_audio(path, start, end)


def test_failing_pipe_reports_status_and_stderr(tmp_path):
    spec = f"cat {tmp_path}/nothing.wav |"
    with pytest.raises(AudioError) as err:
        load_audio(spec)
    msg = str(err.value)
    assert "command 'cat" in msg and "exit status 1" in msg and "No such file" in msg
    # pipefail: a failure early in the pipeline counts even if the last command succeeds
    with pytest.raises(AudioError, match="exit status"):
        load_audio(f"cat {tmp_path}/nothing.wav | cat |")
    with pytest.raises(AudioError, match="no audio"):
        load_audio("true |")
    with pytest.raises(AudioError, match="unreadable"):
        load_audio("echo hello |")
