"""The sources' front ends: our fbank (both framings) against a reference written here in numpy, in float64, from
the published descriptions (Kaldi's ``compute-fbank-feats`` documentation and mel banks; the MaskSpec paper
authors' centred STFT as docs/PRETRAINED.md describes it), not from anyone's code; and the front-end record
(padding of short clips)."""
import numpy as np
import pytest
import torch

from maskspec.features.fbank import FbankConfig, FbankError, compute_fbank
from maskspec.features.front_end import FrontEnd, FrontEndError

AUTHORS = dict(sample_rate=32000, low_freq=0.0, high_freq=15000.0, htk_compat=False, remove_dc_offset=False,
               log_offset=1e-5, framing="centered")
KALDI_EPS = float(np.finfo(np.float32).eps)


def mel_banks(num_bins, n_fft, sr, low, high, single=True):
    """Kaldi's triangular filters over FFT bins 0..n_fft/2 (the Nyquist bin gets no weight): mel(f) = 1127 ln(1 +
    f / 700); num_bins + 2 edges evenly spaced in mel from ``low`` to ``high`` (<= 0: Nyquist + high). Kaldi
    computes them in single precision (``BaseFloat``, mel-computations.cc), and so does this unless ``single`` is
    false (the authors' front end, described as a formula, computed here in double): a band whose energy sits in
    an FFT bin near its edge (weight ~1e-3) depends on the weight's rounding (1e-5) to 1e-3 in log-mel."""
    f32 = np.float32 if single else np.float64
    mel = lambda f: f32(1127.0) * np.log(f32(1.0) + np.asarray(f, f32) / f32(700.0))  # noqa: E731
    high = high if high > 0 else sr / 2 + high
    lo, hi = 1127.0 * np.log(1.0 + low / 700.0), 1127.0 * np.log(1.0 + high / 700.0)
    delta = (hi - lo) / (num_bins + 1)
    m = mel(np.arange(n_fft // 2, dtype=f32) * f32(sr / n_fft))
    banks = np.zeros((num_bins, n_fft // 2 + 1))
    for b in range(num_bins):
        left, center, right = f32(lo + b * delta), f32(lo + (b + 1) * delta), f32(lo + (b + 2) * delta)
        up = (m > left) & (m <= center)
        down = (m > center) & (m < right)
        banks[b, :-1][up] = (m[up] - left) / (center - left)
        banks[b, :-1][down] = (right - m[down]) / (right - center)
    return banks


def hann(n):
    """The symmetric Hann window (Kaldi's "hanning")."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1))


def reference_fbank(x, sr, num_bins=128, low=20.0, high=0.0, log_offset=0.0, centered=False, remove_dc=True,
                    preemph=0.97, shift_ms=10.0, length_ms=25.0):
    """Log-mel [T, num_bins] of the mono waveform ``x`` (float64 throughout).

    Kaldi framing: frame k holds samples [k * shift, k * shift + length); its mean is removed (remove_dc), then
    pre-emphasis inside the frame (the first sample against itself), the Hann window, zero-padding to the
    next power of two, power spectrum, mel banks, log (floored at float32 eps, or log(x + log_offset)).
    Centred (the MaskSpec authors): pre-emphasis once over the whole waveform, y[n] = x[n + 1] - c x[n];
    y is extended at both ends by n_fft / 2 samples mirrored about its first and last sample; frame k holds
    n_fft samples from k * shift of the extended signal, the window in the middle of it.
    """
    x = np.asarray(x, np.float64)
    shift, length = int(sr * shift_ms / 1000), int(sr * length_ms / 1000)
    n_fft = 1 << (length - 1).bit_length()
    window = hann(length)
    frames = []
    if centered:
        y = x[1:] - preemph * x[:-1]
        half = n_fft // 2
        ext = np.concatenate([y[1: half + 1][::-1], y, y[-half - 1: -1][::-1]])
        offset = (n_fft - length) // 2
        for k in range(1 + (len(ext) - n_fft) // shift):
            frame = np.zeros(n_fft)
            frame[offset: offset + length] = ext[k * shift + offset: k * shift + offset + length] * window
            frames.append(frame)
    else:
        for k in range(1 + (len(x) - length) // shift):
            f = x[k * shift: k * shift + length].copy()
            if remove_dc:
                f -= f.mean()
            f = np.concatenate([[f[0] - preemph * f[0]], f[1:] - preemph * f[:-1]])
            frame = np.zeros(n_fft)
            frame[:length] = f * window
            frames.append(frame)
    power = np.abs(np.fft.rfft(np.array(frames), axis=1)) ** 2
    mel = power @ mel_banks(num_bins, n_fft, sr, low, high, single=not centered).T
    return np.log(mel + log_offset) if log_offset > 0 else np.log(np.maximum(mel, KALDI_EPS))


def test_audio(sr, seconds, seed=0, dc=0.0):
    """Generated audio: a chirp, a tone burst, a 50 Hz hum and noise (every mel band holds energy well above
    float32 rounding: in a band 60 dB or more below the frame's strongest, the float32 FFT of torchaudio, and
    of the sources, is off by 1e-3 and more in log-mel), plus an optional DC offset."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(sr * seconds))) / sr
    x = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.1 * rng.standard_normal(t.size)
    x += 0.3 * np.sin(2 * np.pi * 50 * t) + 0.3 * np.sin(2 * np.pi * 90 * t)
    x[t.size // 3: t.size // 2] += 0.2 * np.sin(2 * np.pi * 3000 * t[t.size // 3: t.size // 2])
    return (x + dc).astype(np.float32)


test_audio.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("seconds", [10.0, 3.3, 0.05])
def test_centered_framing_is_the_authors_stft(seconds):
    cfg = FbankConfig(**AUTHORS)
    x = test_audio(32000, seconds)
    ours = compute_fbank(x, 32000, cfg)
    ref = reference_fbank(x, 32000, low=0.0, high=15000.0, log_offset=1e-5, centered=True, remove_dc=False)
    assert ours.shape == ref.shape == (cfg.num_frames(x.size), 128)
    assert ours.shape[0] == 1 + (x.size - 1) // 320
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)
    if seconds == 10.0:
        assert ours.shape[0] == 1000  # Kaldi framing: 998


def test_kaldi_framing_is_kaldi_s_fbank():
    x = test_audio(16000, 2.7, dc=0.1)
    ours = compute_fbank(x, 16000, FbankConfig())  # the AST / Audio-MAE / EAT settings
    ref = reference_fbank(x, 16000)
    assert ours.shape == ref.shape == (1 + (x.size - 400) // 160, 128)
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


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
