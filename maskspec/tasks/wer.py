"""Word and character error rates with the alignment behind them (Kaldi's ``per_utt`` layout).

An alignment is a minimum edit-distance path between reference and hypothesis; ties prefer a correct word or a
substitution over an insertion/deletion pair. Error rate = (substitutions + deletions + insertions) / reference
length.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

OPS = ("C", "S", "I", "D")
EMPTY = "***"  # stands for the missing side of an insertion or deletion in the per-utterance file


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str, str, str]]:
    """[(op, ref unit or EMPTY, hyp unit or EMPTY)] with op C (correct), S, I or D."""
    n, m = len(ref), len(hyp)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i
    for j in range(1, m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        ri, row, prev = ref[i - 1], cost[i], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (ri != hyp[j - 1]), prev[j] + 1, row[j - 1] + 1)
    out, i, j = [], n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            out.append(("C" if ref[i - 1] == hyp[j - 1] else "S", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            out.append(("D", ref[i - 1], EMPTY))
            i -= 1
        else:
            out.append(("I", EMPTY, hyp[j - 1]))
            j -= 1
    return out[::-1]


def counts(alignment: Iterable[tuple[str, str, str]]) -> dict[str, int]:
    c = {op: 0 for op in OPS}
    for op, _, _ in alignment:
        c[op] += 1
    return c


def error_rate(c: Mapping[str, int]) -> float:
    """(S + D + I) / (C + S + D); an empty reference with insertions counts as rate inf, with none as 0."""
    ref_len = c["C"] + c["S"] + c["D"]
    errors = c["S"] + c["D"] + c["I"]
    if ref_len == 0:
        return 0.0 if errors == 0 else float("inf")
    return errors / ref_len


def units(text: str, unit: str) -> list[str]:
    """Words (whitespace-separated) or characters (spaces left out, as Kaldi/ESPnet CER)."""
    if unit == "word":
        return text.split()
    if unit == "char":
        return [ch for ch in text if not ch.isspace()]
    raise ValueError(f"unit must be word or char, got {unit!r}")


def score_corpus(refs: Mapping[str, str], hyps: Mapping[str, str], unit: str) -> tuple[dict, dict]:
    """(summary, per-utterance alignments) of the utterances of ``refs``; a missing hypothesis is empty.

    summary: {error_rate, num_ref, num_utts, C, S, I, D, sentence_error_rate}.
    """
    total = {op: 0 for op in OPS}
    per_utt, wrong = {}, 0
    for utt in sorted(refs):
        a = align(units(refs[utt], unit), units(hyps.get(utt, ""), unit))
        c = counts(a)
        per_utt[utt] = a
        for op in OPS:
            total[op] += c[op]
        wrong += (c["S"] + c["I"] + c["D"]) > 0
    summary = dict(error_rate=error_rate(total), num_ref=total["C"] + total["S"] + total["D"], num_utts=len(refs),
                   sentence_error_rate=wrong / max(len(refs), 1), **total)
    return summary, per_utt


def per_utt_lines(per_utt: Mapping[str, list]) -> list[str]:
    """Kaldi's per_utt layout, four lines per utterance: ref, hyp, op and '#csid C S I D'."""
    lines = []
    for utt, a in per_utt.items():
        width = [max(len(r), len(h), 1) for _, r, h in a]
        c = counts(a)
        lines += [f"{utt} ref  " + " ".join(r.ljust(w) for (_, r, _), w in zip(a, width)),
                  f"{utt} hyp  " + " ".join(h.ljust(w) for (_, _, h), w in zip(a, width)),
                  f"{utt} op   " + " ".join(op.ljust(w) for (op, _, _), w in zip(a, width)),
                  f"{utt} #csid {c['C']} {c['S']} {c['I']} {c['D']}"]
    return [line.rstrip() for line in lines]
