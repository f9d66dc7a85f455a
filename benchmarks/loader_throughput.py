#!/usr/bin/env python3
"""Can the pre-training data loader keep a GPU fed? Clips/s of one loader process against what a GPU consumes.

e.g.: python benchmarks/loader_throughput.py --num_clips 400 --frames 998 --mel 128

Writes --num_clips random [frames, mel] feature matrices in each storage format the recipes offer (ark or HDF5,
float32 or float16) into a temporary folder, then times what one pre-training DataLoader worker does per clip:
FeatDataset (read from feats.scp, random crop to the model's 992 frames, per-bin normalisation) and collate into
batches, in a shuffled order, single-process (num_workers 0), so the figure is per CPU core. The files were just
written, so they are in the page cache: this is the CPU cost of loading, not disk or network speed.

The demand side is analytic: the base config's training FLOPs per clip (benchmarks/pretrain_throughput.py) at a
given MFU of a GPU's peak gives the clips/s one GPU trains on, and their ratio the loader processes (cores) per
GPU needed to keep up.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

from maskspec.data.dataset import FeatDataset, collate
from maskspec.data.feats import FeatWriter
from maskspec.data.stats import compute_stats
from maskspec.models.configs import model_config
from maskspec.models.flops import pretrain_flops_per_clip

FORMATS = (("ark", "float16"), ("ark", "float32"), ("hdf5", "float16"), ("hdf5", "float32"))


def write_set(folder: str, filetype: str, dtype: str, mats: list[np.ndarray]) -> str:
    """A feats.scp of ``mats`` in ``folder``; returns the folder."""
    os.makedirs(folder)
    with FeatWriter(os.path.join(folder, "feats"), filetype, dtype) as w:
        for i, mat in enumerate(mats):
            w.write(f"clip{i:06d}", mat)
    return folder


def time_loading(folder: str, num_frames: int, batch_size: int, epochs: int, seed: int) -> float:
    """Clips/s of FeatDataset + collate over ``epochs`` shuffled passes, one process."""
    stats = compute_stats(os.path.join(folder, "feats.scp"))
    ds = FeatDataset(folder, num_frames, stats, "per_bin", crop="random", seed=seed)
    gen = torch.Generator().manual_seed(seed)
    clips = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, generator=gen,
                                             collate_fn=collate, num_workers=0, drop_last=True)
        for batch in loader:
            clips += batch["feats"].shape[0]
    return clips / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_clips", type=int, default=400)
    parser.add_argument("--frames", type=int, default=998, help="frames per clip (10 s at the paper's features)")
    parser.add_argument("--mel", type=int, default=128)
    parser.add_argument("--size", default="base", help="model config for the demand side")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timings per format; the fastest counts")
    parser.add_argument("--peak_tflops", type=float, default=989.0, help="989: H100 SXM bf16 dense")
    parser.add_argument("--mfu", type=float, default=0.4, help="assumed model FLOP utilisation of the GPU")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.num_clips, args.frames, args.mel, args.batch_size, args.epochs, args.repeats) < 1 or args.num_clips < args.batch_size:
        parser.error("sizes must be positive and --num_clips >= --batch_size")
    torch.set_num_threads(1)
    cfg = model_config(args.size)
    if args.mel != cfg.num_mel_bins:
        parser.error(f"--mel {args.mel} differs from the {args.size} config's {cfg.num_mel_bins} mel bins")
    num_frames = min(cfg.num_frames, args.frames)

    rng = np.random.default_rng(args.seed)
    mats = [(rng.standard_normal((args.frames, args.mel)) * 3 - 5).astype(np.float32) for _ in range(args.num_clips)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="loader_bench_") as tmp:
        for filetype, dtype in FORMATS:
            folder = write_set(os.path.join(tmp, f"{filetype}_{dtype}"), filetype, dtype, mats)
            size_mb = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)) / 2 ** 20
            rate = max(time_loading(folder, num_frames, args.batch_size, args.epochs, args.seed)
                       for _ in range(args.repeats))
            rows.append((f"{filetype} {dtype}", size_mb / args.num_clips * 1024, rate))

    flops = pretrain_flops_per_clip(cfg, num_frames, 1)
    demand = args.peak_tflops * 1e12 * args.mfu / flops
    print(f"loader_throughput: {args.num_clips} clips x [{args.frames}, {args.mel}], cropped to {num_frames} "
          f"frames, batch {args.batch_size}, {args.epochs} shuffled passes, best of {args.repeats}, 1 process, 1 thread; "
          f"{platform.machine()}, torch {torch.__version__}")
    print(f"demand: {args.size} config, {flops / 1e9:.0f} GFLOP per training clip; at {args.mfu:.0%} MFU of "
          f"{args.peak_tflops:g} TFLOP/s one GPU trains on {demand:.0f} clips/s")
    print()
    print("| storage | KiB per clip | clips/s per loader process | processes per GPU |")
    print("|---|---|---|---|")
    for name, kib, rate in rows:
        print(f"| {name} | {kib:.0f} | {rate:.0f} | {demand / rate:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
