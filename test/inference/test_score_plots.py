"""Confusion matrix counts and the score pictures."""
from __future__ import annotations

import numpy as np
import pytest

from maskspec.inference.score_plots import MAX_BARS, confusion_matrix, plot_confusion, plot_per_class_ap


def test_confusion_counts_rows_true_columns_predicted():
    targets = np.eye(3)[[0, 0, 1, 2, 2]]
    scores = np.array([[.9, .1, 0], [.2, .7, .1], [0, 1, 0], [.5, 0, .4], [0, 0, 1]])
    cm = confusion_matrix(scores, targets)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    # a clip with no or several positives has no single true class: left out
    multi = np.vstack([targets, [1, 1, 0], [0, 0, 0]])
    assert confusion_matrix(np.vstack([scores, [1, 0, 0], [1, 0, 0]]), multi).tolist() == cm.tolist()
    with pytest.raises(ValueError, match="must be equal"):
        confusion_matrix(scores, targets[:, :2])


def test_pictures_are_written_atomically(tmp_path):
    plot_confusion(np.array([[3, 1], [0, 4]]), ["cat", "dog"], str(tmp_path / "c.png"), "test")
    many = [{"class": f"k{i}", "positives": 5, "ap": i / 100} for i in range(100)] + [{"class": "x", "ap": None}]
    plot_per_class_ap(many, str(tmp_path / "ap.png"), max_bars=MAX_BARS)
    plot_per_class_ap([{"class": "x", "ap": None}], str(tmp_path / "none.png"))  # nothing to draw: no file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ap.png", "c.png"]
    assert all((tmp_path / n).read_bytes()[:4] == b"\x89PNG" for n in ("ap.png", "c.png"))
