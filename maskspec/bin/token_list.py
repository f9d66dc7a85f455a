"""Build the token list of a speech recipe from its training transcripts (ESPnet's convention).

e.g.: python -m maskspec.bin.token_list --text data/train_clean_100/text --token_type bpe --nbpe 300 \\
          --bpemode unigram --output_dir data/token_list/bpe_unigram300
      python -m maskspec.bin.token_list --text data/train/text --token_type char --output_dir data/token_list/char

Writes <output_dir>/tokens.txt (<blank>, <unk>, then the units; line order = CTC output index) and, for bpe,
<output_dir>/bpe.model (sentencepiece) and train_text.txt (what it was trained on). When the data directory of
--text has utt2dur, prints the token rate (units per second) that the CTC model's output frame rate must carry.
Exit status 0 on success, 1 on an error (message on stderr naming the file), 2 on bad options.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

PROG = "maskspec.bin.token_list"


def get_parser() -> argparse.ArgumentParser:
    from maskspec.text.tokenizer import BPE_MODES, TOKEN_TYPES

    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True, help="a data directory's text file (<utt> <transcript>)")
    p.add_argument("--output_dir", required=True, help="where tokens.txt (and bpe.model) go")
    p.add_argument("--token_type", required=True, choices=TOKEN_TYPES)
    p.add_argument("--nbpe", type=int, default=300, help="sentencepiece vocabulary size (bpe; default %(default)s)")
    p.add_argument("--bpemode", default="unigram", choices=BPE_MODES, help="sentencepiece model type (bpe)")
    p.add_argument("--nbpe_fallback", default="false", choices=("true", "false"),
                   help="true: when the transcripts cannot hold --nbpe pieces, train the most they can hold "
                        "(printed) instead of stopping")
    return p


def token_rate(tokenizer, transcripts: dict, utt2dur: str) -> tuple[float, float, str]:
    """(units per second over the set, highest per utterance, that utterance) from ``utt2dur``."""
    from maskspec.data.datadir import read_kv

    durations = {k: float(v) for k, v in read_kv(utt2dur).items()}
    counts = {u: len(tokenizer.encode(t)) for u, t in transcripts.items() if u in durations}
    if not counts:
        raise ValueError(f"{utt2dur}: no utterance of the text file")
    worst = max(counts, key=lambda u: counts[u] / durations[u])
    return sum(counts.values()) / sum(durations[u] for u in counts), counts[worst] / durations[worst], worst


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    from maskspec.text.tokenizer import TokenizerError, read_text, train_token_list

    try:
        transcripts = read_text(args.text)
        tokenizer = train_token_list(list(transcripts.values()), args.output_dir, args.token_type, args.nbpe,
                                     args.bpemode, nbpe_fallback=args.nbpe_fallback == "true")
        print(f"{PROG}: {args.output_dir}/tokens.txt: {len(tokenizer) - 2} units + <blank>, <unk> from "
              f"{len(transcripts)} transcripts of {args.text}")
        if args.token_type == "bpe" and len(tokenizer) - 1 < args.nbpe:
            print(f"{PROG}: --nbpe {args.nbpe} does not fit these transcripts; trained {len(tokenizer) - 1} "
                  f"pieces instead (--nbpe_fallback true)", file=sys.stderr)
        utt2dur = os.path.join(os.path.dirname(args.text), "utt2dur")
        if os.path.isfile(utt2dur):
            mean, peak, worst = token_rate(tokenizer, transcripts, utt2dur)
            print(f"{PROG}: token rate {mean:.2f} units/s (highest {peak:.2f} units/s, utterance {worst})")
    except (TokenizerError, ValueError, OSError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
