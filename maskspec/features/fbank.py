"""Kaldi-compatible log-mel filterbank features: the settings (``FbankConfig``) and the computation.

Waveform scale: ``compute_fbank`` feeds ``torchaudio.compliance.kaldi.fbank`` the float waveform in [-1, 1], as
AST/SSAST/Audio-MAE and the MaskSpec paper's code do. Kaldi's own ``compute-fbank-feats`` reads 16-bit integers,
so its log-mel values are ``log(32768**2) ~= 20.8`` higher (and its ``dither`` is in integer units: dither 1.0 in
Kaldi corresponds to ``1 / 32768`` here). The difference is a constant offset that the per-bin standardisation
with ``stats.json`` removes, except where the log floor is reached.

torch is imported inside the functions that compute, so that resolving or checking a config (``make_fbank.sh``
does it before starting the jobs) does not pay the seconds of a torch import.

Two configurations are shipped in ``egs/TEMPLATE/conf``: ``fbank_ast.yaml`` (the defaults of this class: 16 kHz,
Hanning window, HTK-compatible, 128 mel bins, 10 ms shift) and ``fbank_paper.yaml`` (the MaskSpec paper's 32 kHz,
0-15 kHz, log(x + 1e-5) features).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from maskspec.utils.atomic import atomic_open
from maskspec.utils.fields import check_field_types, check_fields

WINDOW_TYPES = ("hamming", "hanning", "povey", "rectangular", "blackman")
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
    def feat_dim(self) -> int:
        return self.num_mel_bins + int(self.use_energy)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` samples at ``sample_rate`` (after padding to the minimum length)."""
        num_samples = max(num_samples, self.min_samples)
        return 1 + (num_samples - self.window_size) // self.window_shift

    @property
    def min_samples(self) -> int:
        return max(self.window_size, int(np.ceil(self.min_duration * self.sample_rate)))

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
        return dataclasses.asdict(self)

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


def kaldi_fbank(mono: "torch.Tensor", cfg: FbankConfig) -> "torch.Tensor":
    """``torchaudio.compliance.kaldi.fbank`` of a ``[1, N]`` waveform already at ``cfg.sample_rate``: ``[T, F]``."""
    import torch
    import torchaudio

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
