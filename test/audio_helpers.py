"""Audio and path helpers of the tests, imported by name (``from audio_helpers import ...``): a module of its own,
not conftest, since test/utils has a conftest too and pytest would import either under the one name."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
UTILS = REPO / "utils"


def sine_wave(sr: int, seconds: float, channels: int = 1, freqs=(440.0, 1500.0), amp: float = 0.3) -> np.ndarray:
    """float32 ``[channels, N]``: a sum of sines, each channel with its own frequencies (scaled by channel+1)."""
    t = np.arange(int(round(sr * seconds))) / sr
    rows = [sum(np.sin(2 * np.pi * f * (c + 1) * t) for f in freqs) * amp / len(freqs) for c in range(channels)]
    return np.asarray(rows, dtype=np.float32).reshape(channels, -1)


def make_wav(path, sr: int = 16000, seconds: float = 1.0, channels: int = 1, fmt: str = "WAV",
             subtype: str | None = None) -> np.ndarray:
    """Write ``sine_wave(sr, seconds, channels)`` to ``path`` in format ``fmt`` (WAV, FLAC, OGG, MP3...).

    Returns the written samples ``[channels, N]`` as float32 (before any lossy coding).
    """
    wave = sine_wave(sr, seconds, channels)
    sf.write(str(path), wave.T, sr, format=fmt, subtype=subtype)
    return wave


def direct_fbank(mono: np.ndarray, **kwargs) -> np.ndarray:
    """Reference features: ``torchaudio.compliance.kaldi.fbank`` called directly on a ``[N]`` float waveform
    with the FbankConfig defaults (16 kHz AST style), overridable by ``kwargs``."""
    import torch
    import torchaudio

    opts = dict(
        sample_frequency=16000, num_mel_bins=128, frame_length=25.0, frame_shift=10.0, low_freq=20.0,
        high_freq=0.0, preemphasis_coefficient=0.97, window_type="hanning", htk_compat=True, dither=0.0,
        use_energy=False, remove_dc_offset=True,
    )
    opts.update(kwargs)
    return torchaudio.compliance.kaldi.fbank(torch.from_numpy(np.ascontiguousarray(mono))[None], **opts).numpy()
