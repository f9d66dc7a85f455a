"""Real-time factor of fbank extraction per core: the compute_fbank pipeline against a direct torchaudio loop.

e.g.: python benchmarks/fbank_speed.py --num_clips 50 --seconds 10 --sample_rate 44100 --channels 2

Generates clips (noise plus tones, 16-bit wav) in a temporary folder, then times, with one torch thread each:
  (a) direct: soundfile read + channel mean + torchaudio.functional.resample + torchaudio.compliance.kaldi.fbank;
  (b) pipeline: maskspec.bin.compute_fbank.main on a wav.scp of the same clips, writing an ark (I/O included).
RTF = processing seconds / audio seconds (lower is faster). Each is run --repeats times; the fastest run counts.
The goal is a pipeline within 1.5x of the direct loop.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
import torch
import torchaudio

from maskspec.bin import compute_fbank
from maskspec.features.fbank import FbankConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_clips(folder: str, n: int, seconds: float, sr: int, channels: int) -> list[str]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    paths = []
    for i in range(n):
        tones = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 8000, size=3)) / 6
        wave = tones[:, None] + 0.05 * rng.standard_normal((t.size, channels))
        path = os.path.join(folder, f"clip{i:04d}.wav")
        sf.write(path, wave.astype(np.float32), sr, subtype="PCM_16")
        paths.append(path)
    return paths


def direct(paths: list[str], cfg: FbankConfig) -> float:
    """Seconds for the plain loop; the options mirror what the pipeline passes to torchaudio."""
    t0 = time.perf_counter()
    for path in paths:
        wave, sr = sf.read(path, dtype="float32", always_2d=True)
        mono = wave[:, 0].copy()  # channel by channel, as fast as numpy allows (see fbank.downmix)
        for c in range(1, wave.shape[1]):
            mono += wave[:, c]
        mono = torch.from_numpy(mono / wave.shape[1])[None]
        if sr != cfg.sample_rate:
            mono = torchaudio.functional.resample(mono, sr, cfg.sample_rate)
        feats = torchaudio.compliance.kaldi.fbank(
            mono, sample_frequency=cfg.sample_rate, num_mel_bins=cfg.num_mel_bins, frame_length=cfg.frame_length,
            frame_shift=cfg.frame_shift, low_freq=cfg.low_freq, high_freq=cfg.high_freq,
            preemphasis_coefficient=cfg.preemphasis_coefficient, window_type=cfg.window_type,
            htk_compat=cfg.htk_compat, dither=cfg.dither, remove_dc_offset=cfg.remove_dc_offset,
            use_log_fbank=cfg.log_offset == 0,
        )
        if cfg.log_offset > 0:
            feats = torch.log(feats + cfg.log_offset)
        feats.numpy()
    return time.perf_counter() - t0


def pipeline(scp: str, config: str | None, out_prefix: str) -> float:
    args = ["--wav_scp", scp, "--out_prefix", out_prefix, "--filetype", "ark", "--log_every", "1000000"]
    if config:
        args += ["--config", config]
    t0 = time.perf_counter()
    if compute_fbank.main(args) != 0:
        raise SystemExit("the pipeline failed")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_clips", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sample_rate", type=int, default=44100)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--config", help="fbank YAML (default: the built-in 16 kHz AST-style settings)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = FbankConfig.from_yaml(args.config) if args.config else FbankConfig()
    audio_seconds = args.num_clips * args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_clips(tmp, args.num_clips, args.seconds, args.sample_rate, args.channels)
        scp = os.path.join(tmp, "wav.scp")
        with open(scp, "w") as f:
            f.writelines(f"clip{i:04d} {p}\n" for i, p in enumerate(paths))
        direct(paths[:1], cfg)  # warm-up: lazy imports and first-call allocations
        times = {"direct": [], "pipeline": []}
        for r in range(args.repeats):  # interleaved, so neither side gets a warmer machine
            times["direct"].append(direct(paths, cfg))
            times["pipeline"].append(pipeline(scp, args.config, os.path.join(tmp, f"feats.{r}")))
    best = {k: min(v) for k, v in times.items()}
    rtf = {k: v / audio_seconds for k, v in best.items()}
    print(f"fbank_speed: {args.num_clips} clips x {args.seconds:g} s, {args.sample_rate} Hz, {args.channels} ch "
          f"-> {cfg.sample_rate} Hz, {cfg.num_mel_bins} mel; 1 thread; best of {args.repeats}; "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"torchaudio {torchaudio.__version__}")
    print("| method | seconds | RTF per core | x real time |")
    print("|---|---|---|---|")
    for name, label in [("direct", "direct (sf.read + resample + kaldi.fbank)"),
                        ("pipeline", "pipeline (compute_fbank.main, ark written)")]:
        print(f"| {label} | {best[name]:.2f} | {rtf[name]:.4f} | {1 / rtf[name]:.0f} |")
    ratio = rtf["pipeline"] / rtf["direct"]
    print(f"pipeline / direct RTF ratio: {ratio:.2f} (goal <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
