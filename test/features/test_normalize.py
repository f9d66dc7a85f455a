"""stats.json reading and checks, and the three normalisation modes on numpy arrays and torch tensors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from maskspec.features.normalize import StatsError, load_stats, normalize


@pytest.fixture
def data_dir(tmp_path):
    """A stats.json of 3 mel bins, the third with std 0."""
    stats = dict(num_utts=3, num_frames=35, mean=[1.0, 2.0, 3.0], std=[2.0, 4.0, 0.0], global_mean=5.0,
                 global_std=10.0)
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    return tmp_path


def test_load_stats_and_errors(data_dir, tmp_path):
    stats = load_stats(data_dir / "stats.json")
    assert stats["mean"] == [1.0, 2.0, 3.0]
    with pytest.raises(StatsError, match="no such stats file"):
        load_stats(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"mean": [1, 2], "std": [1], "global_mean": 0, "global_std": 1}))
    with pytest.raises(StatsError, match="bad.json.*same non-zero length"):
        load_stats(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text(json.dumps({"mean": [1], "std": [1]}))
    with pytest.raises(StatsError, match="missing global_mean"):
        load_stats(tmp_path / "bad2.json")


def test_normalize_modes_numpy_and_torch(data_dir):
    stats = load_stats(data_dir / "stats.json")
    x = np.array([[3.0, 6.0, 3.0]], np.float32)
    np.testing.assert_allclose(normalize(x, stats, "per_bin"), [[1.0, 1.0, 0.0]])  # std 0 floored, no inf
    np.testing.assert_allclose(normalize(x, stats, "global"), [[-0.2, 0.1, -0.2]], rtol=1e-6)
    assert normalize(x, stats, "none") is x
    t = normalize(torch.from_numpy(x)[None], stats, "per_bin")
    assert isinstance(t, torch.Tensor) and t.shape == (1, 1, 3) and torch.allclose(t, torch.tensor([[[1.0, 1.0, 0.0]]]))
    with pytest.raises(ValueError, match="4 mel bins but the stats have 3"):
        normalize(np.zeros((2, 4), np.float32), stats, "per_bin")
    with pytest.raises(ValueError, match="needs stats"):
        normalize(x, None, "global")
