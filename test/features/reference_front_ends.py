"""Reference front ends of the imported sources, written here in numpy (float64) from their published
descriptions (Kaldi's ``compute-fbank-feats`` documentation and mel banks; the MaskSpec authors' centred STFT, their
10 s padding and normalisation; Audio-MAE's and EAT's fbank padded to 1024 frames, then normalised), not from
anyone's code (docs/PRETRAINED.md, "The sources' front ends")."""
import numpy as np

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


def generated_audio(sr, seconds, seed=0, dc=0.0):
    """Generated audio: a chirp, a tone burst, a 50 Hz hum and noise (every mel band holds energy well above
    float32 rounding: in a band 60 dB or more below the frame's strongest, the float32 FFT of torchaudio, and
    of the sources, is off by 1e-3 and more in log-mel), plus an optional DC offset."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(sr * seconds))) / sr
    x = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.1 * rng.standard_normal(t.size)
    x += 0.3 * np.sin(2 * np.pi * 50 * t) + 0.3 * np.sin(2 * np.pi * 90 * t)
    x[t.size // 3: t.size // 2] += 0.2 * np.sin(2 * np.pi * 3000 * t[t.size // 3: t.size // 2])
    return (x + dc).astype(np.float32)




# The sources' normalisation constants (their READMEs and papers): Audio-MAE's AudioSet mean and std, EAT's.
AUDIOMAE_MEAN, AUDIOMAE_STD = -4.2677393, 4.5689974
EAT_MEAN, EAT_STD = -4.268, 4.569


def authors_input(x, frame_mean, frame_std):
    """The MaskSpec authors' tagger input of 32 kHz audio ``x``: padded with silence to 10 s, centred STFT
    log-mel (0-15 kHz, log(x + 1e-5)), (L + 4.5) / 5, then per-bin (v - frame_mean) / frame_std."""
    x = np.concatenate([x, np.zeros(max(0, 320000 - x.size))])
    mel = reference_fbank(x, 32000, low=0.0, high=15000.0, log_offset=1e-5, centered=True, remove_dc=False)
    return ((mel + 4.5) / 5.0 - frame_mean) / frame_std


def ast_style_input(x, mean, std, frames=1024):
    """Audio-MAE's / EAT's input of 16 kHz audio ``x``: the waveform minus its mean, Kaldi fbank (16 kHz, 128 bins,
    Hann window, 10 ms), zero-padded to ``frames`` frames, then (fbank - mean) / (2 std)."""
    x = np.asarray(x, np.float64)
    mel = reference_fbank(x - x.mean(), 16000)
    mel = np.concatenate([mel, np.zeros((max(0, frames - mel.shape[0]), mel.shape[1]))])
    return (mel - mean) / (2.0 * std)
