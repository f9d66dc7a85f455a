"""Transcripts <-> output units of a CTC model: sentencepiece (bpe/unigram) or characters, ESPnet's token list.

The token list (``tokens.txt``, one unit per line, line order = output index) is ESPnet's: ``<blank>`` first
(index 0, the CTC blank), ``<unk>`` second, then the units. For ``bpe`` the units are the sentencepiece model's
pieces after its ``<unk>`` (the model is trained with ``unk_id=0`` and no bos/eos, so piece id ``i`` is output
index ``i + 1``); for ``char`` they are the characters of the training text, a space written ``<space>``.

A ``Tokenizer`` travels inside model files as ``to_dict()`` (plain strings: the sentencepiece model is stored as
base64 of its serialized proto), so decoding needs no file beside the model.
"""
from __future__ import annotations

import base64
import logging
import os
import re
from collections import Counter
from typing import Iterable, Mapping, Optional, Sequence

from maskspec.utils.atomic import atomic_open, atomic_path

logger = logging.getLogger(__name__)

TOKEN_TYPES = ("bpe", "char")
BPE_MODES = ("unigram", "bpe")
BLANK, UNK, SPACE = "<blank>", "<unk>", "<space>"


class TokenizerError(ValueError):
    """A token list, model or transcript that cannot be used; the message names the file or utterance."""


def read_text(path: str) -> dict[str, str]:
    """``text`` of a data directory: {utt: transcript}; a line without a transcript is an error naming file:line."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            key, _, value = line.rstrip("\n").strip().partition(" ")
            value = " ".join(value.split())
            if not key or not value:
                raise TokenizerError(f"{path}:{lineno}: expected '<utt> <transcript>', got {line.rstrip()!r}")
            if key in out:
                raise TokenizerError(f"{path}:{lineno}: utterance {key} appears twice")
            out[key] = value
    if not out:
        raise TokenizerError(f"{path}: no transcripts")
    return out


class Tokenizer:
    """encode(transcript) -> output indices (1..V-1, never the blank); decode(indices) -> transcript."""

    def __init__(self, token_type: str, token_list: Sequence[str], bpe_model: Optional[bytes] = None):
        if token_type not in TOKEN_TYPES:
            raise TokenizerError(f"token_type must be one of {TOKEN_TYPES}, got {token_type!r}")
        token_list = list(token_list)
        if len(token_list) < 3 or token_list[0] != BLANK or token_list[1] != UNK:
            raise TokenizerError(f"a token list starts with {BLANK}, {UNK} and has at least one unit, got "
                                 f"{token_list[:3]}")
        if len(set(token_list)) != len(token_list):
            dup = next(t for t, n in Counter(token_list).items() if n > 1)
            raise TokenizerError(f"token list: {dup!r} appears twice")
        self.token_type, self.token_list = token_type, token_list
        self.index = {t: i for i, t in enumerate(token_list)}
        self.sp, self.bpe_model = None, bpe_model
        if token_type == "bpe":
            import sentencepiece as spm

            if not bpe_model:
                raise TokenizerError("token_type bpe needs the sentencepiece model (bpe.model)")
            self.sp = spm.SentencePieceProcessor(model_proto=bpe_model)
            pieces = [self.sp.id_to_piece(i) for i in range(1, self.sp.get_piece_size())]
            if pieces != token_list[2:]:
                raise TokenizerError(f"the token list ({len(token_list) - 2} units) does not match the "
                                     f"sentencepiece model's {len(pieces)} pieces")

    def __len__(self) -> int:
        return len(self.token_list)

    def encode(self, transcript: str) -> list[int]:
        """Output indices of a transcript; an unknown unit becomes <unk> (index 1)."""
        if self.sp is not None:
            return [i + 1 for i in self.sp.encode(transcript)]  # unk_id 0 -> 1
        return [self.index.get(SPACE if c == " " else c, 1) for c in " ".join(transcript.split())]

    def decode(self, indices: Iterable[int]) -> str:
        """The transcript of output indices (blanks and out-of-range indices skipped; <unk> kept as a word)."""
        units = [self.token_list[i] for i in indices if 0 < int(i) < len(self.token_list)]
        # One space between words whatever the units: a lone word-boundary piece (sentencepiece's "▁"), or two
        # space units in a row, would otherwise decode to an empty word.
        if self.sp is not None:
            return " ".join(self.sp.decode_pieces(units).split())
        return " ".join("".join(" " if u == SPACE else u for u in units).split())

    def to_dict(self) -> dict:
        return dict(token_type=self.token_type, token_list=list(self.token_list),
                    bpe_model=base64.b64encode(self.bpe_model).decode("ascii") if self.bpe_model else None)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Tokenizer":
        model = d.get("bpe_model")
        return cls(d["token_type"], d["token_list"], base64.b64decode(model) if model else None)

    @classmethod
    def from_files(cls, token_list: str, bpe_model: Optional[str] = None) -> "Tokenizer":
        """From ``tokens.txt`` (and ``bpe.model`` for bpe; without it the list is one of characters)."""
        try:
            with open(token_list, encoding="utf-8") as f:
                tokens = [line.rstrip("\n") for line in f]
            model = None
            if bpe_model:
                with open(bpe_model, "rb") as f:
                    model = f.read()
        except OSError as e:
            raise TokenizerError(f"cannot read the token list: {e}") from e
        try:
            return cls("bpe" if model else "char", tokens, model)
        except TokenizerError as e:
            raise TokenizerError(f"{token_list}: {e}") from e


def train_token_list(transcripts: Sequence[str], output_dir: str, token_type: str, nbpe: int = 0,
                     bpemode: str = "unigram", nbpe_fallback: bool = False) -> Tokenizer:
    """Write ``output_dir/tokens.txt`` (and ``bpe.model`` for bpe) from training transcripts.

    bpe: a sentencepiece model of ``nbpe`` pieces (``bpemode`` unigram or bpe) over every character seen
    (character_coverage 1.0, as ESPnet does for English). char: the characters of the transcripts in code point
    order. Files are written atomically. ``nbpe_fallback``: when the transcripts cannot hold ``nbpe`` pieces
    (a small corpus), train the most sentencepiece says they can hold instead of stopping (a warning names both).
    """
    if token_type not in TOKEN_TYPES:
        raise TokenizerError(f"token_type must be one of {TOKEN_TYPES}, got {token_type!r}")
    if not transcripts:
        raise TokenizerError("no transcripts to build the token list from")
    os.makedirs(output_dir, exist_ok=True)
    model = None
    if token_type == "char":
        chars = sorted({c for t in transcripts for c in " ".join(t.split())})
        tokens = [BLANK, UNK] + [SPACE if c == " " else c for c in chars]
    else:
        if bpemode not in BPE_MODES:
            raise TokenizerError(f"bpemode must be one of {BPE_MODES}, got {bpemode!r}")
        if nbpe < 2:
            raise TokenizerError(f"nbpe must be at least 2, got {nbpe}")
        try:
            model = _train_sentencepiece(transcripts, output_dir, nbpe, bpemode)
        except TokenizerError as e:
            most = _most_pieces(str(e))
            if not nbpe_fallback or most is None or not 2 <= most < nbpe:
                raise
            logger.warning("%d %s pieces do not fit %d transcripts; using %d, the most they hold", nbpe, bpemode,
                           len(transcripts), most)
            model = _train_sentencepiece(transcripts, output_dir, most, bpemode)
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_proto=model)
        tokens = [BLANK, UNK] + [sp.id_to_piece(i) for i in range(1, sp.get_piece_size())]
        with atomic_open(os.path.join(output_dir, "bpe.model"), "wb") as f:
            f.write(model)
    with atomic_open(os.path.join(output_dir, "tokens.txt"), "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in tokens)
    return Tokenizer(token_type, tokens, model)


def _most_pieces(message: str) -> Optional[int]:
    """The vocabulary size sentencepiece's "Vocabulary size too high" error allows ("<= N"), or None."""
    m = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message)
    return int(m.group(2)) if m else None


def _train_sentencepiece(transcripts: Sequence[str], output_dir: str, nbpe: int, bpemode: str) -> bytes:
    import sentencepiece as spm

    with atomic_path(os.path.join(output_dir, "train_text.txt")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(t + "\n" for t in transcripts)
        prefix = os.path.join(output_dir, "spm_tmp")
        try:
            spm.SentencePieceTrainer.train(
                input=tmp, model_prefix=prefix, vocab_size=nbpe, model_type=bpemode, character_coverage=1.0,
                # every sentence is used (no sampling) by one thread: the same text gives the same model
                unk_id=0, bos_id=-1, eos_id=-1, input_sentence_size=100_000_000, num_threads=1, minloglevel=2)
        except RuntimeError as e:
            raise TokenizerError(f"sentencepiece could not train {nbpe} {bpemode} pieces on {len(transcripts)} "
                                 f"transcripts: {e} (try a smaller --nbpe)") from e
        with open(prefix + ".model", "rb") as f:
            model = f.read()
        for ext in (".model", ".vocab"):
            os.remove(prefix + ext)
    return model
