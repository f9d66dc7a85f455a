"""Compute log-mel fbank features of a wav.scp (optionally cut by a segments file) into ark or HDF5.

e.g.: python -m maskspec.bin.compute_fbank --config conf/fbank.yaml --wav_scp data/train/wav.scp \\
          --out_prefix dump/fbank/raw_fbank_train.1 --filetype ark --dtype float16

Writes <out_prefix>.ark|.h5, <out_prefix>.utt2num_frames, <out_prefix>.utt2dur and, last, <out_prefix>.scp.
A bad utterance stops the job (exit status 1, message naming the utterance and the file) unless --skip_bad true.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from maskspec.data.datadir import DataDirError
from maskspec.data.feats import DTYPES, FILETYPES
from maskspec.data.extract import ExtractError, extract, read_utterances
from maskspec.features.fbank import FbankConfig, FbankError

PROG = "compute_fbank.py"


def str2bool(value: str) -> bool:
    """Kaldi-style booleans: only ``true`` and ``false``."""
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")
    return value == "true"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="fbank settings (YAML, FbankConfig keys); default: built-in 16 kHz AST")
    parser.add_argument("--wav_scp", help="wav.scp of the recordings (required unless --write_config only)")
    parser.add_argument("--segments", help="segments file; one utterance per line instead of one per recording")
    parser.add_argument("--out_prefix", help="output prefix: <prefix>.ark|.h5, .scp, .utt2num_frames, .utt2dur")
    parser.add_argument("--filetype", default="ark", choices=FILETYPES, help="storage format (default: %(default)s)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES, help="storage dtype; read back as float32")
    parser.add_argument("--skip_bad", type=str2bool, default=False, help="true: list bad utterances and go on")
    parser.add_argument("--bad_list", help="where skipped utterances go (default: <out_prefix>.bad)")
    parser.add_argument("--log_every", type=int, default=100, help="progress line every N utterances")
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads (1: one job per core)")
    parser.add_argument("--write_config", help="write the resolved fbank settings (every field) to this YAML")
    return parser


def _terminate(signum, frame):  # noqa: ARG001
    # SystemExit unwinds through FeatWriter / atomic_path, which delete their temporary files
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=f"%(asctime)s {PROG} %(levelname)s: %(message)s")
    in_main_thread = threading.current_thread() is threading.main_thread()  # only there can handlers be set
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return _run(args)
    except (ExtractError, FbankError, DataDirError, OSError) as e:
        logging.error("%s", e)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    cfg = FbankConfig.from_yaml(args.config) if args.config else FbankConfig()
    if args.write_config:
        cfg.to_yaml(args.write_config)
        if args.wav_scp is None and args.out_prefix is None:
            return 0
    if args.wav_scp is None or args.out_prefix is None:
        raise ExtractError("--wav_scp and --out_prefix are required")
    if args.num_threads < 1 or args.log_every < 1:
        raise ExtractError("--num_threads and --log_every must be >= 1")
    import torch  # not at the top: --write_config alone should not pay for importing torch

    utterances = read_utterances(args.wav_scp, args.segments)
    logging.info("%d utterances from %s, settings: %s", len(utterances), args.segments or args.wav_scp, cfg.to_dict())
    threads = torch.get_num_threads()
    torch.set_num_threads(args.num_threads)
    try:
        done, bad = extract(
            utterances, cfg, args.out_prefix, args.filetype, args.dtype, args.skip_bad, args.bad_list, args.log_every
        )
    finally:  # main() may run inside another program (benchmarks, tests): leave its thread count alone
        torch.set_num_threads(threads)
    logging.info("wrote %d utterances to %s.scp (%d skipped)", done, args.out_prefix, len(bad))
    return 0


if __name__ == "__main__":
    sys.exit(main())
