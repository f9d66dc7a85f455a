"""Signal pieces of the generated corpora (egs/mini sound events, egs/mini_speech syllables): numpy only.

Every function draws from the ``numpy.random.Generator`` it is given, so a clip is a pure function of its seed.
"""
from __future__ import annotations

import numpy as np


def envelope(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Raised-cosine attack and release of 5-50 ms: events start and stop without broadband clicks. [n]"""
    env = np.ones(n)
    for side in (0, 1):
        m = min(n // 2, max(1, int(sr * rng.uniform(0.005, 0.05))))
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, m))
        if side == 0:
            env[:m] *= ramp
        else:
            env[-m:] *= ramp[::-1]
    return env


def harmonics(f0: np.ndarray | float, t: np.ndarray, sr: int, amps: list[float], rng, max_hz: float) -> np.ndarray:
    """Sum of harmonics k*f0 (k = 1..len(amps)) below ``max_hz``, random phases; f0 may vary over time. [n]"""
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), t.shape)
    phase0 = np.cumsum(2 * np.pi * f0 / sr)
    out = np.zeros_like(t)
    for k, a in enumerate(amps, 1):
        if k * f0.max() >= max_hz:
            break
        out += a * np.sin(k * phase0 + rng.uniform(0, 2 * np.pi))
    return out


def band_noise(n: int, sr: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """White noise restricted to [lo, hi] Hz by zeroing FFT bins. [n]"""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(freqs < lo) | (freqs > hi)] = 0.0
    return np.fft.irfft(spec, n)


def background(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Noise with a random spectral tilt between brown (-2) and white (0) over the whole band, unit RMS. [n]"""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= np.maximum(freqs, 20.0) ** (rng.uniform(-2.0, 0.0) / 2)
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def generator_main(argv, description: str, set_ids: dict, write_set, sets_help: str, units: str = "clips") -> int:
    """The command line of a corpus generator: ``--audio_dir --data_dir --sets <name>:<count>... [--suffix]
    [--seed] [--nj]``.

    ``write_set(name, out_name, set_id, count, seed, audio_dir, data_dir, pool) -> str`` writes one set and says
    what it wrote (e.g. "8 per class"); ``set_ids`` maps each allowed set name to its stable random-stream id.
    Sets are generated in the order given, by ``--nj`` processes; the output does not depend on ``--nj``.
    """
    import argparse
    import multiprocessing
    import os
    import sys
    import time

    def parse_set(spec: str) -> tuple[str, int]:
        name, _, count = spec.partition(":")
        if name not in set_ids or not count.isdigit() or int(count) <= 0:
            raise argparse.ArgumentTypeError(
                f"bad set '{spec}': expected <name>:<positive count> with name in {', '.join(set_ids)}")
        return name, int(count)

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio_dir", required=True, help="audio goes to <audio_dir>/<set><suffix>/")
    parser.add_argument("--data_dir", required=True, help="data directories go to <data_dir>/<set><suffix>/")
    parser.add_argument("--sets", nargs="+", type=parse_set, required=True, help=sets_help)
    parser.add_argument("--suffix", default="", help="appended to every set name (e.g. _quick)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument("--nj", type=int, default=min(4, os.cpu_count() or 1),
                        help=f"processes generating {units} (the output does not depend on it)")
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be at least 1, got {args.nj}")
    pool = multiprocessing.Pool(args.nj) if args.nj > 1 else None
    try:
        for name, count in args.sets:
            start = time.time()
            out = name + args.suffix
            what = write_set(name, out, set_ids[name], count, args.seed, os.path.join(args.audio_dir, out),
                             os.path.join(args.data_dir, out), pool)
            print(f"{sys.argv[0]}: wrote {args.data_dir}/{out} ({what}) in {time.time() - start:.1f} s", flush=True)
    finally:
        if pool:
            pool.close()
            pool.join()
    return 0
