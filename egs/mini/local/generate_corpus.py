#!/usr/bin/env python3
"""Generate the mini corpus: 2 s synthetic sound events in background noise, as Kaldi data directories.

Ten classes whose identity lives in the time-frequency structure a spectrogram transformer has to learn:
direction of a frequency sweep, pitch, spectral envelope (timbre), amplitude-modulation rate, impulse trains and
noise bands. Each clip holds one event with a random onset, duration, pitch and level, mixed with coloured
background noise at a random SNR, and is stored at a random sample rate (8, 16, 22.05 or 44.1 kHz) with one or
two channels, mostly as 16-bit wav and a few as flac, so that the recipe exercises decoding, resampling and
downmixing.

Every event is band-limited below ``MAX_EVENT_HZ`` (under the 4 kHz Nyquist of the 8 kHz files), so the class
evidence survives every sample rate; only the background noise reaches each file's Nyquist.

Clip ``i`` of set ``s`` is generated from the random stream ``(seed, s, i)``: the same clip comes out whatever
the set sizes are, so ``--quick`` sets are the first clips of the full sets.

Usage (from the recipe directory; local/data.sh calls it):
    python local/generate_corpus.py --audio_dir downloads/mini --data_dir data \
        --sets pretrain:3000 train:8 valid:20 test:50
"""
from __future__ import annotations

import os
import sys

import numpy as np
import soundfile as sf

from maskspec.data.datadir import write_kv
from maskspec.data.synth import background, band_noise, envelope, generator_main, harmonics
from maskspec.utils.atomic import atomic_open, atomic_path

CLASSES = [
    "rising_chirp",
    "falling_chirp",
    "low_harmonic",
    "high_harmonic",
    "bright_harmonic",
    "am_slow",
    "am_fast",
    "click_train",
    "noise_low",
    "noise_high",
]
CLIP_SECONDS = 2.0
MAX_EVENT_HZ = 3800.0
SAMPLE_RATES = (8000, 16000, 22050, 44100)
SAMPLE_RATE_PROBS = (0.2, 0.4, 0.2, 0.2)
STEREO_PROB = 0.3
FLAC_PROB = 0.1
SNR_DB = (-5.0, 20.0)
# Stable stream ids, so that adding a set never changes the clips of another.
SET_IDS = {"pretrain": 1, "train": 2, "valid": 3, "test": 4}


def _harmonics(f0, t: np.ndarray, sr: int, amps: list[float], rng) -> np.ndarray:
    return harmonics(f0, t, sr, amps, rng, MAX_EVENT_HZ)


def synth_event(label: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One event of class ``label`` at ``sr`` Hz, duration drawn per class, unit RMS. [n]"""
    min_dur = 0.8 if label in ("am_slow", "click_train") else 0.3
    dur = rng.uniform(min_dur, 1.5)
    n = int(round(dur * sr))
    t = np.arange(n) / sr
    vibrato = 1.0 + rng.uniform(0.0, 0.01) * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
    if label in ("rising_chirp", "falling_chirp"):
        f_lo, f_hi = rng.uniform(200, 500), rng.uniform(1800, 3500)
        start, end = (f_lo, f_hi) if label == "rising_chirp" else (f_hi, f_lo)
        f = start * (end / start) ** (t / dur)  # exponential sweep: straight line on a mel axis
        x = _harmonics(f, t, sr, [1.0, 0.3], rng)
    elif label == "low_harmonic":
        x = _harmonics(rng.uniform(110, 220) * vibrato, t, sr, [1.0 / k**1.5 for k in range(1, 7)], rng)
    elif label == "high_harmonic":
        x = _harmonics(rng.uniform(700, 1100) * vibrato, t, sr, [1.0, 0.4, 0.2], rng)
    elif label == "bright_harmonic":
        x = _harmonics(rng.uniform(150, 350) * vibrato, t, sr, [1.0 / k**0.3 for k in range(1, 40)], rng)
    elif label in ("am_slow", "am_fast"):
        rate = rng.uniform(2, 4) if label == "am_slow" else rng.uniform(12, 20)
        carrier = _harmonics(rng.uniform(300, 1500), t, sr, [1.0, 0.25], rng)
        x = carrier * (0.5 + 0.5 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    elif label == "click_train":
        rate = rng.uniform(4, 12)
        x = np.zeros(n)
        click = band_noise(max(8, int(0.004 * sr)), sr, 200, MAX_EVENT_HZ, rng)
        click *= np.exp(-np.arange(click.size) / (0.001 * sr))
        for onset in np.arange(rng.uniform(0, 1.0 / rate), dur, 1.0 / rate):
            i = int(onset * sr)
            m = min(click.size, n - i)
            x[i:i + m] += click[:m]
    elif label == "noise_low":
        lo = rng.uniform(80, 200)
        x = band_noise(n, sr, lo, lo * rng.uniform(2.0, 3.0), rng)
    elif label == "noise_high":
        lo = rng.uniform(1500, 2200)
        x = band_noise(n, sr, lo, rng.uniform(lo * 1.3, MAX_EVENT_HZ), rng)
    else:
        raise ValueError(f"unknown class {label!r}")
    x = x * envelope(n, sr, rng)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def make_clip(label: str, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A clip of CLIP_SECONDS with one ``label`` event: ([samples, channels] float in [-1, 1], sample rate)."""
    sr = int(rng.choice(SAMPLE_RATES, p=SAMPLE_RATE_PROBS))
    channels = 2 if rng.random() < STEREO_PROB else 1
    n = int(round(CLIP_SECONDS * sr))
    event = synth_event(label, sr, rng)
    onset = int(rng.integers(0, n - event.size + 1))
    gain = 10 ** (rng.uniform(*SNR_DB) / 20)  # both parts have unit RMS: their ratio is the SNR
    pan = rng.uniform(0.3, 0.7) if channels == 2 else 0.5
    out = np.empty((n, channels))
    for c in range(channels):
        out[:, c] = background(n, sr, rng)
        weight = 2 * (pan if c == 0 else 1 - pan) if channels == 2 else 1.0
        out[onset:onset + event.size, c] += gain * weight * event
    out *= rng.uniform(0.1, 0.9) / np.abs(out).max()
    return out.astype(np.float32), sr


def _write_clip(job: tuple[str, int, int, int, bool, str]) -> tuple[str, str, str, str]:
    """Generate and write one clip: (utt, path, duration, label or ""); a separate process may run it."""
    name, set_id, seed, i, per_class, audio_dir = job
    rng = np.random.default_rng([seed, set_id, i])
    # Labelled sets cycle through the classes (the same count each); the unlabeled pool draws them.
    label = CLASSES[i % len(CLASSES)] if per_class else CLASSES[int(rng.integers(len(CLASSES)))]
    audio, sr = make_clip(label, rng)
    utt = f"{name}-{i:05d}"
    ext = "flac" if rng.random() < FLAC_PROB else "wav"
    path = os.path.abspath(os.path.join(audio_dir, f"{utt}.{ext}"))
    with atomic_path(path) as tmp:
        sf.write(tmp, audio, sr, subtype="PCM_16", format=ext.upper())
    return utt, path, f"{audio.shape[0] / sr:.3f}", label if per_class else ""


def write_set(name: str, set_id: int, count: int, per_class: bool, seed: int, audio_dir: str,
              data_dir: str, pool=None) -> None:
    """Write ``count`` clips (or ``count`` per class) and the data directory ``data_dir``."""
    os.makedirs(audio_dir, exist_ok=True)
    total = count * len(CLASSES) if per_class else count
    jobs = [(name, set_id, seed, i, per_class, audio_dir) for i in range(total)]
    rows = pool.map(_write_clip, jobs, chunksize=16) if pool else list(map(_write_clip, jobs))
    os.makedirs(data_dir, exist_ok=True)
    write_kv(os.path.join(data_dir, "wav.scp"), {utt: path for utt, path, _, _ in rows})
    write_kv(os.path.join(data_dir, "utt2dur"), {utt: dur for utt, _, dur, _ in rows})
    if per_class:
        write_kv(os.path.join(data_dir, "utt2label"), {utt: label for utt, _, _, label in rows})
        with atomic_open(os.path.join(data_dir, "labels.txt"), "w", encoding="utf-8") as f:
            f.write("".join(c + "\n" for c in CLASSES))


def _write(name: str, out: str, set_id: int, count: int, seed: int, audio_dir: str, data_dir: str, pool) -> str:
    per_class = name != "pretrain"
    write_set(out, set_id, count, per_class, seed, audio_dir, data_dir, pool)
    return f"{count}{' per class' if per_class else ''}"


def main(argv: list[str] | None = None) -> int:
    return generator_main(argv, __doc__, SET_IDS, _write,
                          "<name>:<count>; pretrain counts clips, train/valid/test count clips per class")


if __name__ == "__main__":
    sys.exit(main())
