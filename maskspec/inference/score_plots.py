"""Pictures of a scored set, for a person to look at: the confusion matrix (single-label) and per-class AP.

``confusion_matrix`` is also written to results.json, so the numbers behind the picture stay machine-readable.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from maskspec.utils.plots import pyplot, save_png

# Above this many classes the bar chart shows the best and the worst half of this many (AudioSet has 527).
MAX_BARS = 40
# Up to this many classes each confusion cell carries its count.
MAX_ANNOTATED = 20


def confusion_matrix(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """[C, C] int counts, rows = true class (the positive of a one-hot target), columns = top-scoring class.

    scores, targets: [N, C]. Clips without exactly one positive are left out (they have no single true class).
    """
    scores, targets = np.asarray(scores), np.asarray(targets)
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(f"confusion_matrix: scores {scores.shape} and targets {targets.shape} must be equal [N, C]")
    one = (targets > 0.5).sum(axis=1) == 1
    true = (targets[one] > 0.5).argmax(axis=1)
    pred = scores[one].argmax(axis=1)
    c = scores.shape[1]
    return np.bincount(true * c + pred, minlength=c * c).reshape(c, c)


def _save(fig, path: str) -> None:
    fig.tight_layout()
    save_png(fig, path, dpi=90)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: str, title: str = "") -> None:
    """Row-normalised confusion matrix (each true class sums to 1) as a PNG; counts in the cells when small."""
    plt = pyplot()
    c = len(classes)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    side = min(4 + 0.28 * c, 24)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ticks = np.arange(c)
    font = 8 if c <= 30 else 5
    ax.set_xticks(ticks, labels=classes, rotation=90, fontsize=font)
    ax.set_yticks(ticks, labels=classes, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if c <= MAX_ANNOTATED:
        for i in range(c):
            for j in range(c):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.5 else "black")
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title} accuracy {accuracy:.3f} ({cm.sum()} clips)".strip())
    _save(fig, path)


def plot_per_class_ap(per_class: Sequence[dict], path: str, title: str = "", max_bars: int = MAX_BARS) -> None:
    """Horizontal bars of each class's AP, best first; with many classes the best and worst ``max_bars // 2``."""
    plt = pyplot()
    rows = sorted((r for r in per_class if r.get("ap") is not None), key=lambda r: -r["ap"])
    if not rows:
        return
    shown: list[Optional[dict]] = list(rows)
    if len(rows) > max_bars:
        half = max_bars // 2
        shown = rows[:half] + [None] + rows[-half:]  # None: a gap standing for the classes left out
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.22 * len(shown)))
    y = np.arange(len(shown))
    ax.barh(y, [r["ap"] if r else 0.0 for r in shown], color="tab:blue")
    labels = [f"{r['class']} ({r['positives']})" if r else f"... {len(rows) - 2 * (max_bars // 2)} more ..."
              for r in shown]
    ax.set_yticks(y, labels=labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("average precision (positives in brackets)")
    mean_ap = float(np.mean([r["ap"] for r in rows]))
    ax.axvline(mean_ap, color="tab:red", linestyle="--", linewidth=1, label=f"mAP {mean_ap:.3f}")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{title} per-class AP, {len(rows)} classes".strip())
    _save(fig, path)
