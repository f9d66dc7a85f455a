"""Metrics against hand-computed cases: ties, classes without positives, masked (unknown) labels."""
import math

import numpy as np
import pytest

from maskspec.tasks.metrics import accuracy, compute_metrics, d_prime, per_class_metrics, primary_value


def test_ap_and_auc_with_ties_by_hand():
    # Scores 0.9 (pos), 0.5 (neg), 0.5 (pos), 0.1 (neg). Thresholds: >=0.9 -> P=1, R=1/2; >=0.5 -> P=2/3, R=1.
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6. AUC: of 4 (pos, neg) pairs, 3 ranked right and one tie (counts 1/2) -> 7/8.
    scores = np.array([[0.9], [0.5], [0.5], [0.1]])
    targets = np.array([[1], [0], [1], [0]])
    row = per_class_metrics(scores, targets, classes=["dog"])[0]
    assert row == pytest.approx({"class": "dog", "positives": 2, "negatives": 2, "ap": 5 / 6, "auc": 7 / 8})


def test_class_without_positives_excluded_from_map():
    scores = np.array([[0.9, 0.8, 0.1], [0.2, 0.7, 0.3], [0.6, 0.1, 0.2]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    m = compute_metrics(scores, targets, classes=["a", "b", "c"])
    # a: positives at rank 1 -> AP 1, AUC 1. b: scores 0.8 (neg), 0.7 (pos), 0.1 (neg) -> AP 1/2, AUC 1/2.
    assert m["mAP"] == pytest.approx((1.0 + 0.5) / 2)
    assert m["mAUC"] == pytest.approx((1.0 + 0.5) / 2)
    assert m["classes_without_ap"] == ["c"] and m["classes_without_auc"] == ["c"]
    assert m["per_class"][2]["ap"] is None and m["per_class"][2]["positives"] == 0
    assert m["d_prime"] == pytest.approx(math.sqrt(2) * 0.6744897501960817)  # Phi^-1(0.75)
    assert "accuracy" not in m and m["primary_metric"] == "mAP" and primary_value(m) == m["mAP"]


def test_masked_labels_are_excluded():
    # Clip 1 is a negative with the top score; masked out, class a is ranked perfectly.
    scores = np.array([[0.9], [0.99], [0.2]])
    targets = np.array([[1], [0], [0]])
    known = np.array([[1], [0], [1]])
    full = per_class_metrics(scores, targets)[0]
    masked = per_class_metrics(scores, targets, known)[0]
    assert full["ap"] == pytest.approx(0.5) and full["auc"] == pytest.approx(0.5)
    assert masked["ap"] == pytest.approx(1.0) and masked["auc"] == pytest.approx(1.0)
    assert masked["negatives"] == 1
    # A class whose only positive is unknown has no AP.
    m = compute_metrics(np.array([[0.5], [0.1]]), np.array([[0], [0]]), np.array([[0], [1]]))
    assert m["mAP"] is None and math.isnan(primary_value(m))


def test_accuracy_by_hand_and_ties():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4], [0.9, 0.05, 0.05]])
    targets = np.eye(3)[[1, 1, 0, 0]]
    # Clip 1 ties between 0 and 1: the lowest index (0) wins, which is wrong here; clip 2 picks 2, wrong.
    assert accuracy(scores, targets) == pytest.approx(2 / 4)
    m = compute_metrics(scores, targets, task_type="single_label")
    assert m["accuracy"] == pytest.approx(0.5) and primary_value(m) == pytest.approx(0.5)


def test_d_prime_values():
    assert d_prime(0.5) == pytest.approx(0.0)
    assert d_prime(0.875) == pytest.approx(math.sqrt(2) * 1.1503493803760079)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[N, C\]"):
        compute_metrics(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(np.full((2, 1), np.nan), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="task_type"):
        compute_metrics(np.zeros((2, 1)), np.zeros((2, 1)), task_type="regression")
