"""history.json and curves.png: strict JSON, atomic, readable errors."""
from __future__ import annotations

import json

import pytest

from maskspec.train.history import CURVES_NAME, HISTORY_NAME, read_history, write_history


def test_round_trip_plot_and_non_finite_values(tmp_path):
    history = [dict(epoch=1, step=10, train_loss=1.0, lr=1e-3, loss_ratio=float("nan")),
               dict(epoch=2, step=20, train_loss=0.5, lr=5e-4, loss_ratio=0.8)]
    write_history(str(tmp_path), history)
    text = (tmp_path / HISTORY_NAME).read_text()
    assert "NaN" not in text  # strict JSON for other tools
    back = read_history(str(tmp_path))
    assert back[0]["loss_ratio"] is None and back[1] == history[1]
    png = (tmp_path / CURVES_NAME).read_bytes()
    assert png.startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == [CURVES_NAME, HISTORY_NAME]  # no temporaries left


def test_no_plot_and_bad_files(tmp_path):
    write_history(str(tmp_path), [dict(epoch=1, step=1, train_loss=2.0, lr=0.1)], plot=False)
    assert not (tmp_path / CURVES_NAME).exists()
    (tmp_path / HISTORY_NAME).write_text("[{")
    with pytest.raises(ValueError, match=HISTORY_NAME + ": not valid JSON"):
        read_history(str(tmp_path))
    (tmp_path / HISTORY_NAME).write_text(json.dumps({"epoch": 1}))
    with pytest.raises(ValueError, match="expected a list"):
        read_history(str(tmp_path))
