"""Our fbank (both framings) against the reference front ends written from the published descriptions
(``reference_front_ends.py``), and the front-end record (padding of short clips)."""
import numpy as np
import pytest
import torch

from maskspec.features.fbank import FbankConfig, FbankError, compute_fbank
from maskspec.features.front_end import FrontEnd, FrontEndError
from reference_front_ends import generated_audio, reference_fbank

AUTHORS = dict(sample_rate=32000, low_freq=0.0, high_freq=15000.0, htk_compat=False, remove_dc_offset=False,
               log_offset=1e-5, framing="centered")


@pytest.mark.parametrize("seconds", [10.0, 3.3, 0.05])
def test_centered_framing_is_the_authors_stft(seconds):
    cfg = FbankConfig(**AUTHORS)
    x = generated_audio(32000, seconds)
    ours = compute_fbank(x, 32000, cfg)
    ref = reference_fbank(x, 32000, low=0.0, high=15000.0, log_offset=1e-5, centered=True, remove_dc=False)
    assert ours.shape == ref.shape == (cfg.num_frames(x.size), 128)
    assert ours.shape[0] == 1 + (x.size - 1) // 320
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)
    if seconds == 10.0:
        assert ours.shape[0] == 1000  # Kaldi framing: 998


def test_kaldi_framing_is_kaldi_s_fbank():
    x = generated_audio(16000, 2.7, dc=0.1)
    ours = compute_fbank(x, 16000, FbankConfig())  # the AST / Audio-MAE / EAT settings
    ref = reference_fbank(x, 16000)
    assert ours.shape == ref.shape == (1 + (x.size - 400) // 160, 128)
    # Kaldi's mel weights are float32 (torchaudio's and the reference's round differently, ~1e-5 near a band
    # edge), which moves a band whose tone sits in such an FFT bin by up to ~1e-4 in log-mel (1e-4 measured) ...
    np.testing.assert_allclose(ours, ref, atol=3e-4, rtol=0)
    assert np.abs(ours - ref).mean() < 1e-5
    # ... and 1e-5 in the model's input, Audio-MAE's and EAT's normalisation (x + 4.27) / 9.14
    np.testing.assert_allclose(ours / 9.1379948, ref / 9.1379948, atol=1e-4, rtol=0)


def test_centered_framing_options_frames_and_errors():
    cfg = FbankConfig(**AUTHORS)
    assert cfg.fft_size == 1024 and cfg.num_frames(320000) == 1000
    assert FbankConfig(**dict(AUTHORS, framing="kaldi")).num_frames(320000) == 998
    assert cfg.num_frames(np.array([320000, 32000])).tolist() == [1000, 100]
    assert cfg.min_samples == 514  # more than n_fft / 2 samples after pre-emphasis, for the reflection
    assert compute_fbank(np.zeros(100, np.float32) + 0.1, 32000, cfg).shape == (2, 128)
    assert cfg.frame_center_ms(3) == 30.0 and FbankConfig().frame_center_ms(3) == 42.5
    assert cfg.to_dict()["framing"] == "centered" and "framing" not in FbankConfig().to_dict()
    assert FbankConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(FbankError, match="remove_dc_offset"):
        FbankConfig(**dict(AUTHORS, remove_dc_offset=True))
    with pytest.raises(FbankError, match="use_energy"):
        FbankConfig(**dict(AUTHORS, use_energy=True))
    with pytest.raises(FbankError, match="framing must be one of"):
        FbankConfig(framing="center")


def test_front_end_record():
    assert FrontEnd.from_dict(None) == FrontEnd() and FrontEnd().pad == "features"
    fe = FrontEnd.from_dict(dict(name="audiomae", pad="fbank", pad_frames=8))
    raw = torch.arange(6.0).reshape(3, 2) + 1
    padded = fe.pad_fbank(raw)
    assert padded.shape == (8, 2) and torch.equal(padded[:3], raw) and not padded[3:].any()
    assert fe.pad_fbank(torch.ones(9, 2)).shape == (9, 2)  # longer clips are not cut
    assert torch.equal(fe.pad_waveform(torch.ones(1, 5), 16000), torch.ones(1, 5))
    wave = FrontEnd(pad="waveform", pad_seconds=0.5).pad_waveform(torch.ones(1, 100), 1000)
    assert wave.shape == (1, 500) and wave[0, :100].eq(1).all() and not wave[0, 100:].any()
    assert FrontEnd.from_dict(dict(pad="waveform", pad_seconds=10)).pad_seconds == 10.0  # an int becomes a float
    for bad, message in [(dict(pad="fbank"), "pad_frames"), (dict(pad="waveform"), "pad_seconds"),
                         (dict(pad="zeros"), "pad must be one of"), (dict(pad_frame=3), "unknown front-end setting")]:
        with pytest.raises(FrontEndError, match=message):
            FrontEnd.from_dict(bad, "model.pt: front_end")
