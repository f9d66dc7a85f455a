#!/usr/bin/env python3
"""Generate the mini speech corpus: spoken-like utterances of a small vocabulary, with transcripts.

No speech synthesiser is involved: each word is a sequence of consonant-vowel syllables built from signal pieces.
Vowels are voiced (harmonics of a pitch that drifts over the utterance) shaped by the first three formants of
the vowel; consonants are unvoiced noise (fricatives ``s``, ``f``), a closure then a burst (plosives ``k``,
``t``), or a low voiced murmur (the nasal ``m``). Each utterance draws its speaker (pitch 85-250 Hz, formant
scale 0.85-1.2, as between a low and a high voice), speaking rate (0.75-1.3), pauses between words (150-300 ms at rate 1, longer than a plosive's closure), loudness and background noise (10-30 dB
SNR), so the model has to learn the units and not one voice. The transcript is the words, lower case,
separated by spaces: the letters are the units (a character model) and sentencepiece finds the syllables.

Utterance ``i`` of set ``s`` comes from the random stream ``(seed, s, i)``, so the ``--quick`` sets are the first
utterances of the full ones. Audio is 16 kHz mono 16-bit wav.

Usage (from the recipe directory; local/data.sh calls it):
    python local/generate_speech.py --audio_dir downloads --data_dir data --sets pretrain:3000 train:400 valid:100
"""
from __future__ import annotations

import os
import sys

import numpy as np
import soundfile as sf

from maskspec.data.datadir import write_kv
from maskspec.data.synth import background, band_noise, envelope, generator_main, harmonics
from maskspec.utils.atomic import atomic_path

SAMPLE_RATE = 16000
MAX_HZ = 7600.0
# (F1, F2, F3) in Hz of an adult voice (Peterson and Barney's averages, rounded).
VOWELS = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010), "o": (570, 840, 2410),
          "u": (300, 870, 2240)}
CONSONANTS = ("s", "f", "k", "t", "m")
# A fixed vocabulary: one- and two-syllable words, each syllable consonant + vowel.
WORDS = ("ka", "mi", "su", "to", "fe", "kimo", "sata", "mufe", "tiko", "fasu", "meki", "sote", "kafu", "timu",
         "fosa", "kuta")
WORDS_PER_UTT = (2, 5)  # inclusive range
SNR_DB = (10.0, 30.0)
SET_IDS = {"pretrain": 1, "train": 2, "valid": 3, "test": 4}


def vowel(v: str, dur: float, f0: np.ndarray, scale: float, rng) -> np.ndarray:
    """Voiced vowel: harmonics of ``f0`` [n] weighted by three formant resonances (scaled by ``scale``). [n]"""
    n = f0.size
    t = np.arange(n) / SAMPLE_RATE
    mean_f0 = float(f0.mean())
    formants = [f * scale * rng.uniform(0.95, 1.05) for f in VOWELS[v]]
    gains, widths = (1.0, 0.7, 0.35), (90.0, 110.0, 150.0)
    k = np.arange(1, int(MAX_HZ // (mean_f0 * 1.05)))
    amps = sum(g / (1.0 + ((k * mean_f0 - f) / w) ** 2) for f, g, w in zip(formants, gains, widths)) / k**0.5
    return harmonics(f0, t, SAMPLE_RATE, list(amps), rng, MAX_HZ)


def consonant(c: str, dur: float, f0: np.ndarray, rng) -> np.ndarray:
    """One consonant of ``dur`` seconds. [n]"""
    n = f0.size
    if c == "s":
        return band_noise(n, SAMPLE_RATE, rng.uniform(3800, 4600), MAX_HZ, rng) * 0.6
    if c == "f":
        return band_noise(n, SAMPLE_RATE, 1200, 6500, rng) * 0.25
    if c in ("k", "t"):  # closure (silence, shorter than a pause between words) then a burst in the place's band
        x = np.zeros(n)
        burst = min(n, int(SAMPLE_RATE * rng.uniform(0.025, 0.045)))
        lo, hi = (1400, 2600) if c == "k" else (3200, 5800)
        b = band_noise(burst, SAMPLE_RATE, lo, hi, rng) * np.exp(-np.arange(burst) / (0.015 * SAMPLE_RATE))
        x[n - burst:] = b
        return x * 1.2
    if c == "m":  # a murmur: low harmonics only, weaker than a vowel
        t = np.arange(n) / SAMPLE_RATE
        return harmonics(f0, t, SAMPLE_RATE, [1.0, 0.5, 0.15], rng, 600.0) * 0.5
    raise ValueError(f"unknown consonant {c!r}")


def utterance(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """(16 kHz mono float32 audio in [-1, 1], transcript) of one utterance."""
    words = [WORDS[int(i)] for i in rng.integers(len(WORDS), size=int(rng.integers(WORDS_PER_UTT[0],
                                                                                   WORDS_PER_UTT[1] + 1)))]
    pitch, scale, rate = rng.uniform(85, 250), rng.uniform(0.85, 1.2), rng.uniform(0.75, 1.3)
    pieces = [np.zeros(int(SAMPLE_RATE * rng.uniform(0.1, 0.3)))]
    elapsed = 0.0
    for w, word in enumerate(words):
        if w:
            # a pause between words (as in careful read speech): without one a word boundary would be inaudible
            pieces.append(np.zeros(int(SAMPLE_RATE * rng.uniform(0.15, 0.3) / rate)))
        for s in range(0, len(word), 2):
            c, v = word[s], word[s + 1]
            for unit, (lo, hi) in ((c, (0.05, 0.08 if c in "kt" else 0.1)), (v, (0.09, 0.17))):
                dur = rng.uniform(lo, hi) / rate
                n = int(SAMPLE_RATE * dur)
                # pitch declines over the utterance and wobbles a little, as in read speech
                f0 = pitch * (1.0 - 0.15 * min(elapsed, 2.0) / 2.0) * (
                    1.0 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * np.arange(n) / SAMPLE_RATE))
                x = vowel(unit, dur, f0, scale, rng) if unit in VOWELS else consonant(unit, dur, f0, rng)
                x = x / (np.sqrt(np.mean(x**2)) + 1e-12) if unit in VOWELS else x / 0.3
                pieces.append(x * envelope(n, SAMPLE_RATE, rng) * rng.uniform(0.7, 1.0))
                elapsed += dur
    pieces.append(np.zeros(int(SAMPLE_RATE * rng.uniform(0.1, 0.3))))
    speech = np.concatenate(pieces)
    speech /= np.sqrt(np.mean(speech**2)) + 1e-12
    snr = rng.uniform(*SNR_DB)
    audio = speech + background(speech.size, SAMPLE_RATE, rng) * 10 ** (-snr / 20)
    audio *= rng.uniform(0.1, 0.9) / np.abs(audio).max()
    return audio.astype(np.float32), " ".join(words)


def _write(job: tuple[str, int, int, int, str]) -> tuple[str, str, str, str]:
    """Generate and write one utterance: (utt, path, duration, transcript); a separate process may run it."""
    name, set_id, seed, i, audio_dir = job
    audio, text = utterance(np.random.default_rng([seed, set_id, i]))
    utt = f"{name}-{i:05d}"
    path = os.path.abspath(os.path.join(audio_dir, f"{utt}.wav"))
    with atomic_path(path) as tmp:
        sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return utt, path, f"{audio.size / SAMPLE_RATE:.3f}", text


def write_set(name: str, out: str, set_id: int, count: int, seed: int, audio_dir: str, data_dir: str, pool) -> str:
    """Write ``count`` utterances of set ``out`` and its data directory (with text unless it is pretrain)."""
    os.makedirs(audio_dir, exist_ok=True)
    jobs = [(out, set_id, seed, i, audio_dir) for i in range(count)]
    rows = pool.map(_write, jobs, chunksize=16) if pool else list(map(_write, jobs))
    os.makedirs(data_dir, exist_ok=True)
    write_kv(os.path.join(data_dir, "wav.scp"), {utt: path for utt, path, _, _ in rows})
    write_kv(os.path.join(data_dir, "utt2dur"), {utt: dur for utt, _, dur, _ in rows})
    if name != "pretrain":
        write_kv(os.path.join(data_dir, "text"), {utt: text for utt, _, _, text in rows})
    return f"{count} utterances"


def main(argv: list[str] | None = None) -> int:
    return generator_main(argv, __doc__, SET_IDS, write_set, "<name>:<utterances>; every set but pretrain gets a "
                          "text file", units="utterances")


if __name__ == "__main__":
    sys.exit(main())
