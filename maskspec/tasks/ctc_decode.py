"""CTC decoding without a language model: greedy (best path) and prefix beam search.

Both take per-step log-probabilities ``[T, V]`` (index 0 = blank) of one utterance and return output indices
with blanks and repeats collapsed.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

NEG_INF = -math.inf


def greedy_decode(log_probs: np.ndarray, blank: int = 0) -> list[int]:
    """Best path: the most likely unit per step, repeats merged, blanks dropped. [T, V] -> indices."""
    best = np.asarray(log_probs).argmax(axis=-1)
    out, prev = [], blank
    for k in best.tolist():
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return out


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def prefix_beam_search(log_probs: np.ndarray, beam_size: int = 8, blank: int = 0,
                       prune_log_prob: float = -12.0) -> list[int]:
    """Most probable label sequence over the ``beam_size`` best prefixes, summing over every alignment of each.

    A prefix keeps two scores: ending in a blank and ending in its last unit, so that a repeated unit is a new
    unit only after a blank. Units with log-probability below ``prune_log_prob`` at a step are not extended
    (the best unit of the step always is). [T, V] -> indices.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    beams = {(): (0.0, NEG_INF)}  # prefix -> (log p ending in blank, log p ending in a unit)
    for t in range(log_probs.shape[0]):
        row = log_probs[t]
        candidates = np.flatnonzero(row >= min(prune_log_prob, row.max()))
        nxt = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (p_b, p_nb) in beams.items():
            total = _logadd(p_b, p_nb)
            for k in candidates.tolist():
                p = row[k]
                if k == blank:
                    entry = nxt[prefix]
                    entry[0] = _logadd(entry[0], total + p)
                    continue
                last = prefix[-1] if prefix else None
                extended = prefix + (k,)
                entry = nxt[extended]
                if k == last:  # the same unit again is a new unit only after a blank; else it extends the old one
                    entry[1] = _logadd(entry[1], p_b + p)
                    same = nxt[prefix]
                    same[1] = _logadd(same[1], p_nb + p)
                else:
                    entry[1] = _logadd(entry[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logadd(*kv[1]), reverse=True)[:beam_size]
        beams = {prefix: (scores[0], scores[1]) for prefix, scores in ranked}
    best = max(beams.items(), key=lambda kv: _logadd(*kv[1]))[0]
    return list(best)
