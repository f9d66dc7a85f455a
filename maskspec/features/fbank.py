"""Kaldi-compatible log-mel filterbank features: the settings (``FbankConfig``) and the computation.

Waveform scale: ``compute_fbank`` feeds ``torchaudio.compliance.kaldi.fbank`` the float waveform in [-1, 1], as
AST/SSAST/Audio-MAE and the MaskSpec paper's code do. Kaldi's own ``compute-fbank-feats`` reads 16-bit integers,
so its log-mel values are ``log(32768**2) ~= 20.8`` higher (and its ``dither`` is in integer units: dither 1.0 in
Kaldi corresponds to ``1 / 32768`` here). The difference is a constant offset that the per-bin standardisation
with ``stats.json`` removes, except where the log floor is reached.

torch is imported inside the functions that compute, so that resolving or checking a config (``make_fbank.sh``
does it before starting the jobs) does not pay the seconds of a torch import.

Two framings (``FbankConfig.framing``):

* ``kaldi`` (the default): Kaldi's ``snip_edges`` frames, frame ``k`` spans samples ``[k * shift, k * shift +
  length)``, each frame's DC offset removed and pre-emphasised on its own (``x[t] - c * x[t-1]`` inside the
  frame, its first sample against itself): ``1 + (N - length) // shift`` frames.
* ``centered``: the MaskSpec authors' centred STFT. The waveform ``x[0..N-1]`` is pre-emphasised once, as a
  whole, by the two-tap filter ``y[n] = x[n + 1] - c * x[n]`` (``n = 0..N-2``: ``N - 1`` samples), ``y`` is
  padded at both ends by reflection with ``n_fft / 2`` samples, and frame ``k`` is the window (``length``
  samples, centred in the ``n_fft``-sample FFT frame) centred on ``y[k * shift]``: ``1 + (N - 1) // shift``
  frames (1000 for 10 s at 32 kHz with a 320-sample hop). No DC removal, no energy column. The power
  spectrum, mel banks (Kaldi's) and log are those of the Kaldi framing.

Three configurations are shipped in ``egs/TEMPLATE/conf``: ``fbank_ast.yaml`` (the defaults of this class: 16 kHz,
Hanning window, HTK-compatible, 128 mel bins, 10 ms shift), ``fbank_paper.yaml`` (the MaskSpec paper's 32 kHz,
0-15 kHz, log(x + 1e-5) features with Kaldi framing) and ``fbank_paper_centered.yaml`` (the same with the
authors' centred framing: their exact front end).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from maskspec.utils.atomic import atomic_open
from maskspec.utils.fields import check_field_types, check_fields

WINDOW_TYPES = ("hamming", "hanning", "povey", "rectangular", "blackman")
FRAMINGS = ("kaldi", "centered")
# FbankConfig fields that torchaudio.compliance.kaldi.fbank takes under the same name and meaning
KALDI_OPTIONS = ("num_mel_bins", "frame_length", "frame_shift", "low_freq", "high_freq", "preemphasis_coefficient",
                 "window_type", "htk_compat", "dither", "use_energy", "remove_dc_offset")


class FbankError(ValueError):
    """Settings or input that cannot give valid features."""


@dataclass
class FbankConfig:
    """Feature settings; field names and meanings follow Kaldi's ``compute-fbank-feats`` options.

    Attributes:
        sample_rate: audio is resampled to this rate (Hz) before the features are computed.
        num_mel_bins: F, the number of mel filters (feature dimension, plus 1 if ``use_energy``).
        frame_length, frame_shift: analysis window and hop in milliseconds. The FFT size is the window length
            rounded up to a power of two (25 ms at 32 kHz: 800 samples, FFT 1024).
        low_freq: lowest mel filter edge (Hz).
        high_freq: highest mel filter edge (Hz); 0 or negative means Nyquist plus this value (Kaldi convention).
        preemphasis_coefficient: ``x[t] - c * x[t-1]`` inside each frame.
        window_type: one of ``WINDOW_TYPES``; Kaldi's "hanning" is the symmetric Hann window.
        htk_compat: HTK layout (only changes where the energy column goes when ``use_energy``).
        dither: Gaussian noise added before analysis, in the [-1, 1] waveform scale; 0 keeps features
            deterministic (the default).
        use_energy: add a log-energy column.
        remove_dc_offset: subtract each frame's mean before windowing.
        log_offset: 0 uses Kaldi's ``log(max(x, float32 eps))``; a positive value uses ``log(x + log_offset)``
            (the paper's code uses 1e-5, which also keeps silence from reaching -16).
        expect_channels: if set, audio with another number of channels is an error; None accepts any number
            and averages the channels.
        min_duration: audio shorter than this (seconds, and in any case shorter than one frame) is padded with
            trailing zeros to that length, so every utterance gives at least one frame.
        framing: ``kaldi`` (snip-edges frames, the default) or ``centered`` (the MaskSpec authors' centred
            STFT: whole-waveform pre-emphasis, reflect padding, frame ``k`` centred on sample ``k * shift``; see
            the module docstring). ``centered`` needs ``remove_dc_offset`` and ``use_energy`` false.
    """

    sample_rate: int = 16000
    num_mel_bins: int = 128
    frame_length: float = 25.0
    frame_shift: float = 10.0
    low_freq: float = 20.0
    high_freq: float = 0.0
    preemphasis_coefficient: float = 0.97
    window_type: str = "hanning"
    htk_compat: bool = True
    dither: float = 0.0
    use_energy: bool = False
    remove_dc_offset: bool = True
    log_offset: float = 0.0
    expect_channels: int | None = None
    min_duration: float = 0.0
    framing: str = "kaldi"

    def __post_init__(self) -> None:
        check_field_types(self, "invalid fbank config:", FbankError)
        nyquist = self.sample_rate / 2
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        checks = [
            (self.sample_rate > 0, "sample_rate must be positive"),
            (self.num_mel_bins > 0, "num_mel_bins must be positive"),
            (self.frame_shift > 0 and self.frame_length >= self.frame_shift, "need 0 < frame_shift <= frame_length"),
            (self.window_size >= 2, "frame_length is shorter than two samples"),
            (0 <= self.low_freq < high <= nyquist, f"need 0 <= low_freq < high_freq <= Nyquist ({nyquist:g} Hz)"),
            (0 <= self.preemphasis_coefficient <= 1, "preemphasis_coefficient must be in [0, 1]"),
            (self.window_type in WINDOW_TYPES, f"window_type must be one of {WINDOW_TYPES}"),
            (self.dither >= 0, "dither must be >= 0"),
            (self.log_offset >= 0, "log_offset must be >= 0"),
            (self.expect_channels is None or self.expect_channels >= 1, "expect_channels must be >= 1 or null"),
            (self.min_duration >= 0, "min_duration must be >= 0"),
            (self.framing in FRAMINGS, f"framing must be one of {FRAMINGS}"),
            (self.framing != "centered" or not self.remove_dc_offset,
             "framing centered has no per-frame DC removal: set remove_dc_offset: false"),
            (self.framing != "centered" or not self.use_energy,
             "framing centered has no energy column: set use_energy: false"),
        ]
        for ok, message in checks:
            if not ok:
                raise FbankError(f"invalid fbank config: {message}")

    @property
    def window_size(self) -> int:
        """Samples per frame at ``sample_rate`` (Kaldi truncates)."""
        return int(self.sample_rate * self.frame_length * 0.001)

    @property
    def window_shift(self) -> int:
        """Samples between frame starts at ``sample_rate``."""
        return int(self.sample_rate * self.frame_shift * 0.001)

    @property
    def fft_size(self) -> int:
        """FFT length: the window rounded up to a power of two (Kaldi's round_to_power_of_two)."""
        return 1 << (self.window_size - 1).bit_length()

    @property
    def feat_dim(self) -> int:
        return self.num_mel_bins + int(self.use_energy)

    def num_frames(self, num_samples):
        """Frames produced for ``num_samples`` samples at ``sample_rate`` (after padding to the minimum length);
        an int, or an integer array for an array of lengths."""
        n = np.maximum(num_samples, self.min_samples)
        if self.framing == "centered":
            frames = 1 + (n - 1) // self.window_shift
        else:
            frames = 1 + (n - self.window_size) // self.window_shift
        return int(frames) if np.ndim(frames) == 0 else frames

    @property
    def min_samples(self) -> int:
        """The shortest waveform computed (shorter ones are zero-padded to it): one frame for Kaldi framing;
        for centred framing, enough for the reflect padding (more than ``fft_size / 2`` pre-emphasised
        samples)."""
        shortest = self.fft_size // 2 + 2 if self.framing == "centered" else self.window_size
        return max(shortest, int(np.ceil(self.min_duration * self.sample_rate)))

    def frame_center_ms(self, frame: float) -> float:
        """Where frame ``frame`` (an index, or a fractional mean of indices) is centred, in ms from the start."""
        shift_ms = 1000.0 * self.window_shift / self.sample_rate
        if self.framing == "centered":
            return frame * shift_ms
        return frame * shift_ms + 500.0 * self.window_size / self.sample_rate

    @classmethod
    def from_dict(cls, values: dict, source: str = "fbank config") -> "FbankConfig":
        """Build from a mapping; an unknown key is an error naming the key and ``source``."""
        if not isinstance(values, dict):
            raise FbankError(f"{source}: expected a mapping of fbank settings, got {type(values).__name__}")
        check_fields(cls, values, f"{source}: unknown fbank setting", FbankError)
        try:
            return cls(**values)
        except FbankError as e:
            raise FbankError(f"{source}: {e}") from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "FbankConfig":
        """Read a YAML mapping of fields; missing fields keep their defaults, unknown keys are an error."""
        import yaml

        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                values = yaml.safe_load(f)
        except OSError as e:
            raise FbankError(f"{path}: cannot read fbank config: {e}") from e
        except yaml.YAMLError as e:
            raise FbankError(f"{path}: invalid YAML: {e}") from e
        return cls.from_dict({} if values is None else values, source=path)

    def check_model_input(self, source: str) -> "FbankConfig":
        """``self``, if features of these settings can be a MaskSpec model's input; else an FbankError naming
        ``source`` (the fbank.yaml file or model file). Feature extraction itself accepts ``use_energy``."""
        if self.use_energy:
            raise FbankError(
                f"{source}: use_energy: true cannot be model input: the model's patches tile the mel bins, and the "
                f"log-energy column is not one (its num_mel_bins is the feature dimension, taken to be mel bins); "
                f"set use_energy: false in fbank.yaml and recompute the features")
        return self

    def to_dict(self) -> dict:
        """Every field, except ``framing`` when it is the default ``kaldi``: the settings written before the
        option existed (fbank.yaml of feature dumps, model files) stay byte for byte what they were."""
        d = dataclasses.asdict(self)
        if d["framing"] == "kaldi":
            del d["framing"]
        return d

    def to_yaml(self, path: str | os.PathLike) -> None:
        """Write every field (the resolved settings), atomically."""
        import yaml

        with atomic_open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)


def downmix(wave):
    """Average of the channels of ``[C, N]`` float32 (numpy array or torch tensor): ``[N]`` of the same kind."""
    # channel by channel: numpy's mean over the channel axis is several times slower on long clips
    mono = wave[0].clone() if hasattr(wave, "clone") else np.array(wave[0], dtype=np.float32)
    for channel in wave[1:]:
        mono += channel
    if wave.shape[0] > 1:
        mono /= wave.shape[0]
    return mono


def prepare_waveform(wave, sr: int, cfg: FbankConfig) -> "torch.Tensor":
    """Mono float32 ``[1, N']`` at ``cfg.sample_rate``, zero-padded to ``cfg.min_samples``.

    ``wave`` is ``[C, N]`` (or ``[N]``) float in [-1, 1], a numpy array or a tensor (the result stays on the
    tensor's device); channels are averaged.
    """
    import torch
    import torchaudio

    wave = wave.to(torch.float32) if isinstance(wave, torch.Tensor) else np.asarray(wave, dtype=np.float32)
    if wave.ndim == 1:
        wave = wave[None]
    if wave.ndim != 2 or wave.shape[1] == 0 or wave.shape[0] == 0:
        raise FbankError(f"expected a non-empty waveform [channels, samples], got shape {tuple(wave.shape)}")
    mono = torch.as_tensor(downmix(wave))[None]
    if int(sr) != cfg.sample_rate:
        mono = torchaudio.functional.resample(mono, int(sr), cfg.sample_rate)
    short = cfg.min_samples - mono.shape[1]
    if short > 0:
        mono = torch.nn.functional.pad(mono, (0, short))
    return mono


def feature_window(window_type: str, size: int, device=None) -> "torch.Tensor":
    """Kaldi's analysis windows (``feature-window.cc``), float64 ``[size]``; "hanning" is the symmetric Hann
    window ``0.5 - 0.5 cos(2 pi n / (size - 1))``."""
    import torch

    n = torch.arange(size, dtype=torch.float64, device=device)
    a = 2 * np.pi / (size - 1)
    if window_type == "hanning":
        w = 0.5 - 0.5 * torch.cos(a * n)
    elif window_type == "povey":
        w = (0.5 - 0.5 * torch.cos(a * n)) ** 0.85
    elif window_type == "hamming":
        w = 0.54 - 0.46 * torch.cos(a * n)
    elif window_type == "blackman":
        w = 0.42 - 0.5 * torch.cos(a * n) + (0.5 - 0.42) * torch.cos(2 * a * n)
    elif window_type == "rectangular":
        w = torch.ones(size, dtype=torch.float64, device=device)
    else:
        raise FbankError(f"unknown window_type {window_type!r}")
    return w


def mel_banks(cfg: FbankConfig) -> np.ndarray:
    """Kaldi's triangular mel filters, float64 ``[num_mel_bins, fft_size / 2 + 1]`` (no weight on the Nyquist
    bin): ``mel(f) = 1127 ln(1 + f / 700)``, ``num_mel_bins + 2`` edges evenly spaced in mel from ``low_freq`` to
    ``high_freq``, FFT bin ``i`` at ``i * sample_rate / fft_size`` Hz (no VTLN warping)."""
    def mel(f):
        return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)

    high = cfg.high_freq if cfg.high_freq > 0 else cfg.sample_rate / 2 + cfg.high_freq
    edges = np.linspace(mel(cfg.low_freq), mel(high), cfg.num_mel_bins + 2)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    m = mel(np.arange(cfg.fft_size // 2) * cfg.sample_rate / cfg.fft_size)[None]
    rising = np.where((m > left) & (m <= center), (m - left) / (center - left), 0.0)
    falling = np.where((m > center) & (m < right), (right - m) / (right - center), 0.0)
    return np.pad(rising + falling, ((0, 0), (0, 1)))


def centered_fbank(mono: "torch.Tensor", cfg: FbankConfig) -> "torch.Tensor":
    """Log-mel ``[T, F]`` float32 of a ``[1, N]`` waveform at ``cfg.sample_rate`` with the centred framing (see
    the module docstring); ``N`` must be at least ``cfg.min_samples``. Computed in float64 (the STFT and the mel
    banks), so the features are the description's to float32 rounding, however weak a band."""
    import torch

    x = mono[0].to(torch.float64)
    if cfg.dither > 0:
        x = x + cfg.dither * torch.randn_like(x)
    y = x[1:] - cfg.preemphasis_coefficient * x[:-1]  # whole-waveform pre-emphasis, N - 1 samples
    n_fft = cfg.fft_size
    window = feature_window(cfg.window_type, cfg.window_size, y.device)
    spec = torch.stft(y, n_fft, hop_length=cfg.window_shift, win_length=cfg.window_size, window=window,
                      center=True, pad_mode="reflect", return_complex=True)  # [n_fft/2 + 1, T], window mid-frame
    power = spec.real ** 2 + spec.imag ** 2
    mel = torch.as_tensor(mel_banks(cfg), device=power.device) @ power  # [F, T]
    if cfg.log_offset > 0:
        mel = torch.log(mel + cfg.log_offset)
    else:
        mel = torch.log(torch.clamp_min(mel, float(np.finfo(np.float32).eps)))
    return mel.T.to(torch.float32).contiguous()


def kaldi_fbank(mono: "torch.Tensor", cfg: FbankConfig) -> "torch.Tensor":
    """Log-mel ``[T, F]`` of a ``[1, N]`` waveform already at ``cfg.sample_rate``: ``torchaudio.compliance.
    kaldi.fbank`` (Kaldi framing), or ``centered_fbank`` (``cfg.framing`` centered)."""
    import torch
    import torchaudio

    if cfg.framing == "centered":
        return centered_fbank(mono, cfg)
    feats = torchaudio.compliance.kaldi.fbank(
        mono,
        sample_frequency=cfg.sample_rate,
        use_log_fbank=cfg.log_offset == 0,
        **{name: getattr(cfg, name) for name in KALDI_OPTIONS},
    )
    if cfg.log_offset > 0:
        # the energy column (if any) is already a log; only the mel energies take log(x + offset)
        mel = slice(0, cfg.num_mel_bins) if cfg.htk_compat or not cfg.use_energy else slice(1, None)
        feats = feats.clone()
        feats[:, mel] = torch.log(feats[:, mel] + cfg.log_offset)
    return feats


def fbank_tensor(wave, sr: int, cfg: FbankConfig) -> "torch.Tensor":
    """``compute_fbank`` as a float32 tensor ``[T, F]`` on the waveform's device (the CPU for numpy input)."""
    import torch

    feats = kaldi_fbank(prepare_waveform(wave, sr, cfg), cfg)
    if not torch.isfinite(feats).all():
        raise FbankError("features contain NaN or inf values")
    return feats


def compute_fbank(wave: np.ndarray, sr: int, cfg: FbankConfig) -> np.ndarray:
    """Log-mel features of one waveform.

    Args:
        wave: float32 ``[C, N]`` in [-1, 1] (``[N]`` is taken as mono).
        sr: sample rate of ``wave``.
        cfg: settings; channels are averaged, audio resampled to ``cfg.sample_rate``
            (``torchaudio.functional.resample``) and padded to ``cfg.min_samples``.

    Returns:
        float32 ``[T, F]`` with ``T = cfg.num_frames(resampled length)`` and ``F = cfg.feat_dim``.

    Raises:
        FbankError: empty input, or features that are not finite.
    """
    return fbank_tensor(wave, sr, cfg).numpy().astype(np.float32, copy=False)
