"""Per-mel-bin and global mean/std of the features of a data directory, for input normalisation.

e.g.: python -m maskspec.bin.compute_stats --data_dir data/train --max_utts 10000

Writes JSON {num_utts, num_frames, mean: [F], std: [F], global_mean, global_std} (default <data_dir>/stats.json).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from maskspec.data.datadir import DataDirError
from maskspec.data.feats import FeatReadError
from maskspec.data.stats import compute_stats, write_stats

PROG = "compute_stats.py"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", required=True, help="data directory with feats.scp")
    parser.add_argument("--max_utts", type=int, help="use a random subset of this many utterances (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random subset (default: %(default)s)")
    parser.add_argument("--output", help="output JSON (default: <data_dir>/stats.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=f"%(asctime)s {PROG} %(levelname)s: %(message)s")
    output = args.output or os.path.join(args.data_dir, "stats.json")
    try:
        if args.max_utts is not None and args.max_utts <= 0:
            raise ValueError(f"--max_utts must be positive, got {args.max_utts}")
        stats = compute_stats(os.path.join(args.data_dir, "feats.scp"), args.max_utts, args.seed)
        write_stats(stats, output)
    except (DataDirError, FeatReadError, ValueError, OSError) as e:
        logging.error("%s", e)
        return 1
    logging.info(
        "%s: %d utterances, %d frames, global mean %.3f std %.3f",
        output, stats["num_utts"], stats["num_frames"], stats["global_mean"], stats["global_std"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
