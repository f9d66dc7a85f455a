"""Classification metrics: accuracy, mAP, ROC-AUC, d' and a per-class table.

Inputs are arrays over N clips and C classes: ``scores [N, C]`` (probabilities, or any score monotone in them),
``targets [N, C]`` (multi-hot 0/1) and an optional ``known [N, C]`` (1 = label annotated, 0 = unknown; partial
labels as OpenMIC-2018). Unknown entries are excluded from every per-class metric.

Average precision and ROC-AUC come from scikit-learn (``average_precision_score``, ``roc_auc_score``), a widely
used, well-tested implementation; ties are handled the sklearn way (tied scores form one threshold).
Macro averages skip the classes where the metric is undefined: AP needs at least one known positive, AUC needs
at least one known positive and one known negative. The skipped classes are listed in the result.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

PRIMARY_METRIC = {"single_label": "accuracy", "multi_label": "mAP"}


def _check(scores: np.ndarray, targets: np.ndarray, known: Optional[np.ndarray]):
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"metrics: scores {scores.shape} and targets {targets.shape} must both be [N, C]")
    if not np.all(np.isfinite(scores)):
        raise ValueError("metrics: scores contain NaN or inf")
    if known is None:
        known = np.ones_like(targets, dtype=bool)
    else:
        known = np.asarray(known) > 0
        if known.shape != targets.shape:
            raise ValueError(f"metrics: known {known.shape} must match targets {targets.shape}")
    return scores, targets > 0.5, known


def accuracy(scores: np.ndarray, targets: np.ndarray) -> float:
    """Share of clips whose top-scoring class is a positive (single-label: the one true class).

    On tied top scores the lowest class index wins (numpy argmax), deterministically.
    """
    scores, pos, _ = _check(scores, targets, None)
    if scores.shape[0] == 0:
        raise ValueError("metrics: accuracy of zero clips")
    top = scores.argmax(axis=1)
    return float(pos[np.arange(len(top)), top].mean())


def d_prime(auc: float) -> float:
    """Sensitivity index from a ROC-AUC: sqrt(2) * Phi^-1(auc) (infinite at auc = 1, as the definition says)."""
    from scipy.stats import norm

    return float(math.sqrt(2.0) * norm.ppf(auc))


def per_class_metrics(scores: np.ndarray, targets: np.ndarray, known: Optional[np.ndarray] = None,
                      classes: Optional[Sequence[str]] = None) -> list[dict]:
    """One row per class: {class, positives, negatives, ap, auc} over the clips where the class is known.

    ``ap`` is None without a known positive; ``auc`` is None unless both positives and negatives are known.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores, pos, known = _check(scores, targets, known)
    n_classes = scores.shape[1]
    classes = list(classes) if classes is not None else [str(i) for i in range(n_classes)]
    if len(classes) != n_classes:
        raise ValueError(f"metrics: {len(classes)} class names for {n_classes} score columns")
    rows = []
    for c in range(n_classes):
        k = known[:, c]
        y, s = pos[k, c], scores[k, c]
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        ap = float(average_precision_score(y, s)) if n_pos > 0 else None
        auc = float(roc_auc_score(y, s)) if n_pos > 0 and n_neg > 0 else None
        rows.append({"class": classes[c], "positives": n_pos, "negatives": n_neg, "ap": ap, "auc": auc})
    return rows


def compute_metrics(scores: np.ndarray, targets: np.ndarray, known: Optional[np.ndarray] = None,
                    task_type: str = "multi_label", classes: Optional[Sequence[str]] = None) -> dict:
    """Every metric of a scored set.

    Returns {num_clips, task_type, primary_metric, accuracy (single-label only), mAP, mAUC, d_prime,
    classes_without_ap, classes_without_auc, per_class}; mAP/mAUC/d_prime are None when no class qualifies.
    """
    if task_type not in PRIMARY_METRIC:
        raise ValueError(f"metrics: task_type must be one of {sorted(PRIMARY_METRIC)}, got {task_type!r}")
    rows = per_class_metrics(scores, targets, known, classes)
    aps = [r["ap"] for r in rows if r["ap"] is not None]
    aucs = [r["auc"] for r in rows if r["auc"] is not None]
    m_auc = float(np.mean(aucs)) if aucs else None
    out = {
        "num_clips": int(np.asarray(scores).shape[0]),
        "task_type": task_type,
        "primary_metric": PRIMARY_METRIC[task_type],
        "mAP": float(np.mean(aps)) if aps else None,
        "mAUC": m_auc,
        "d_prime": d_prime(m_auc) if m_auc is not None else None,
        "classes_without_ap": [r["class"] for r in rows if r["ap"] is None],
        "classes_without_auc": [r["class"] for r in rows if r["auc"] is None],
        "per_class": rows,
    }
    if task_type == "single_label":
        out["accuracy"] = accuracy(scores, targets)
    return out


def primary_value(metrics: dict) -> float:
    """The number a model is selected on: accuracy for single-label, mAP for multi-label (NaN if undefined)."""
    value = metrics.get(metrics["primary_metric"])
    return float("nan") if value is None else float(value)
