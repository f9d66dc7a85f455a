import math
import re
from pathlib import Path

import numpy as np
import pytest

from audio_helpers import direct_fbank, sine_wave
from maskspec.features.fbank import FbankConfig, FbankError, compute_fbank, prepare_waveform

CONF = Path(__file__).resolve().parents[2] / "egs" / "TEMPLATE" / "conf"


def test_defaults_are_the_ast_config():
    assert FbankConfig.from_yaml(CONF / "fbank_ast.yaml") == FbankConfig()


def test_paper_config():
    cfg = FbankConfig.from_yaml(CONF / "fbank_paper.yaml")
    assert (cfg.sample_rate, cfg.num_mel_bins, cfg.low_freq, cfg.high_freq) == (32000, 128, 0.0, 15000.0)
    assert (cfg.window_size, cfg.window_shift, cfg.log_offset) == (800, 320, 1e-5)
    assert cfg.num_frames(320000) == 998  # 10 s clip


def test_yaml_errors_name_the_key_and_file(tmp_path):
    path = tmp_path / "fbank.yaml"
    path.write_text("sample_rate: 16000\nnum_mel_bin: 64\n")
    with pytest.raises(FbankError, match=rf"{path}: unknown fbank setting 'num_mel_bin'"):
        FbankConfig.from_yaml(path)
    path.write_text("sample_rate: 16k\n")
    with pytest.raises(FbankError, match=rf"{path}: .*sample_rate must be int"):
        FbankConfig.from_yaml(path)
    path.write_text("high_freq: 9000\n")
    with pytest.raises(FbankError, match="high_freq <= Nyquist"):
        FbankConfig.from_yaml(path)
    path.write_text("window_type: gauss\n")
    with pytest.raises(FbankError, match="window_type"):
        FbankConfig.from_yaml(path)
    path.write_text("- a list\n")
    with pytest.raises(FbankError, match="expected a mapping"):
        FbankConfig.from_yaml(path)
    with pytest.raises(FbankError, match="cannot read"):
        FbankConfig.from_yaml(tmp_path / "absent.yaml")


def test_yaml_round_trip(tmp_path):
    cfg = FbankConfig(sample_rate=32000, num_mel_bins=64, log_offset=1e-5, expect_channels=1, high_freq=-200.0)
    cfg.to_yaml(tmp_path / "c.yaml")
    assert FbankConfig.from_yaml(tmp_path / "c.yaml") == cfg
    assert FbankConfig.from_dict(cfg.to_dict()) == cfg


def test_equals_direct_torchaudio_call():
    wave = sine_wave(16000, 1.3)
    feats = compute_fbank(wave, 16000, FbankConfig())
    ref = direct_fbank(wave[0])
    assert feats.dtype == np.float32 and feats.shape == (128, 128)
    np.testing.assert_allclose(feats, ref, atol=1e-4)


def test_log_offset_and_other_settings():
    wave = sine_wave(32000, 0.5)
    cfg = FbankConfig.from_yaml(CONF / "fbank_paper.yaml")
    mel = direct_fbank(
        wave[0], sample_frequency=32000, low_freq=0.0, high_freq=15000.0, htk_compat=False, remove_dc_offset=False,
        use_log_fbank=False,
    )
    np.testing.assert_allclose(compute_fbank(wave, 32000, cfg), np.log(mel + 1e-5), atol=1e-4)
    cfg = FbankConfig(num_mel_bins=40, window_type="povey", use_energy=True, htk_compat=False, log_offset=1e-3)
    feats = compute_fbank(wave, 32000, cfg)
    assert feats.shape[1] == 41
    ref = direct_fbank(
        prepare_waveform(wave, 32000, cfg)[0].numpy(), num_mel_bins=40,
        window_type="povey", use_energy=True, htk_compat=False, use_log_fbank=False,
    )
    np.testing.assert_allclose(feats[:, 0], ref[:, 0], atol=1e-4)  # the energy column stays Kaldi's log energy
    np.testing.assert_allclose(feats[:, 1:], np.log(ref[:, 1:] + 1e-3), atol=1e-4)


def test_stereo_is_averaged():
    wave = sine_wave(16000, 0.5, channels=2)
    np.testing.assert_allclose(
        compute_fbank(wave, 16000, FbankConfig()), direct_fbank(wave.mean(axis=0)), atol=1e-4
    )


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_resampling_to_16k(sr):
    cfg = FbankConfig()
    feats = compute_fbank(sine_wave(sr, 1.0, freqs=(440.0, 1500.0, 3000.0)), sr, cfg)
    native = compute_fbank(sine_wave(16000, 1.0, freqs=(440.0, 1500.0, 3000.0)), 16000, cfg)
    resampled_len = math.ceil(sr * 1.0 * 16000 / sr)
    assert feats.shape == (cfg.num_frames(resampled_len), 128) == native.shape == (98, 128)
    # bins holding the tones agree; empty bins are log(~0) and differ by resampling noise, so skip them
    strong = native > native.max() - 20
    assert strong.sum() > 10 * native.shape[0]
    assert np.abs(feats[strong] - native[strong]).max() < 0.25


def test_resampling_frame_count_for_odd_lengths():
    cfg = FbankConfig(sample_rate=32000)
    wave = sine_wave(44100, 1.2345)
    expected = cfg.num_frames(math.ceil(wave.shape[1] * 32000 / 44100))
    assert compute_fbank(wave, 44100, cfg).shape[0] == expected


def test_short_audio_is_padded():
    cfg = FbankConfig()
    assert compute_fbank(sine_wave(16000, 0.01), 16000, cfg).shape == (1, 128)
    cfg = FbankConfig(min_duration=1.0)
    feats = compute_fbank(sine_wave(16000, 0.3), 16000, cfg)
    assert feats.shape == (98, 128)
    # the padding is silence: Kaldi's log floor
    assert feats[-1].max() < -15


def test_bad_waveforms():
    with pytest.raises(FbankError, match="non-empty"):
        compute_fbank(np.zeros((1, 0), np.float32), 16000, FbankConfig())
    wave = sine_wave(16000, 0.2)
    wave[0, 100] = np.nan
    with pytest.raises(FbankError, match="NaN or inf"):
        compute_fbank(wave, 16000, FbankConfig())


def test_energy_column_is_refused_as_model_input(tmp_path):
    """Extraction takes use_energy; a training run's fbank.yaml and a model file's settings do not."""
    from maskspec.inference.featurize import model_fbank
    from maskspec.train.cli import read_fbank_config

    cfg = FbankConfig(use_energy=True)
    assert FbankConfig().check_model_input("x") == FbankConfig()
    (tmp_path / "fbank.yaml").write_text("num_mel_bins: 64\nuse_energy: true\n")
    with pytest.raises(FbankError, match=re.escape(f"{tmp_path}/fbank.yaml: use_energy: true cannot be model input")):
        read_fbank_config(str(tmp_path), required=True)
    with pytest.raises(FbankError, match="model file fbank_config: use_energy: true .* mel bins"):
        model_fbank(dict(fbank_config=cfg.to_dict()))
    (tmp_path / "fbank.yaml").write_text("num_mel_bins: 64\n")
    assert read_fbank_config(str(tmp_path), required=True)["num_mel_bins"] == 64
