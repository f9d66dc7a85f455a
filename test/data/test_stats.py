import json
import random

import numpy as np
import pytest

from maskspec.bin.compute_stats import main
from maskspec.data.datadir import write_kv
from maskspec.data.feats import FeatWriter
from maskspec.data.stats import MomentAccumulator, compute_stats


def make_feats(data_dir, n=12, dim=8, filetype="ark", seed=0):
    """Random [T, dim] features with a large offset (tests precision) under data_dir/feats.scp."""
    rng = np.random.default_rng(seed)
    mats = {f"u{i:02d}": (rng.standard_normal((5 + 3 * i, dim)) * np.arange(1, dim + 1) + 1000).astype(np.float32)
            for i in range(n)}
    with FeatWriter(str(data_dir / "data" / "raw"), filetype) as w:
        for utt, mat in mats.items():
            w.write(utt, mat)
    write_kv(data_dir / "feats.scp", {u: v for u, v, _ in w.entries})
    return mats


@pytest.mark.parametrize("filetype", ["ark", "hdf5"])
def test_stats_match_numpy(tmp_path, filetype):
    mats = make_feats(tmp_path, filetype=filetype)
    assert main(["--data_dir", str(tmp_path)]) == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    allx = np.concatenate(list(mats.values())).astype(np.float64)
    assert stats["num_utts"] == 12 and stats["num_frames"] == allx.shape[0]
    np.testing.assert_allclose(stats["mean"], allx.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats["std"], allx.std(axis=0), rtol=1e-9)
    assert stats["global_mean"] == pytest.approx(allx.mean(), rel=1e-12)
    assert stats["global_std"] == pytest.approx(allx.std(), rel=1e-9)


def test_random_subset(tmp_path):
    mats = make_feats(tmp_path)
    out = tmp_path / "sub.json"
    assert main(["--data_dir", str(tmp_path), "--max_utts", "5", "--seed", "3", "--output", str(out)]) == 0
    stats = json.loads(out.read_text())
    chosen = random.Random(3).sample(sorted(mats), 5)
    allx = np.concatenate([mats[u] for u in sorted(chosen)]).astype(np.float64)
    assert stats["num_utts"] == 5 and stats["num_frames"] == allx.shape[0]
    np.testing.assert_allclose(stats["mean"], allx.mean(axis=0), rtol=1e-12)
    assert stats["global_std"] == pytest.approx(allx.std(), rel=1e-9)
    # the same seed gives the same subset, another seed another one
    assert compute_stats(tmp_path / "feats.scp", 5, 3) == stats
    assert compute_stats(tmp_path / "feats.scp", 5, 4)["num_frames"] != stats["num_frames"]
    assert compute_stats(tmp_path / "feats.scp", 100)["num_utts"] == 12


def test_accumulator_errors():
    acc = MomentAccumulator()
    with pytest.raises(ValueError, match="no frames"):
        acc.result()
    acc.add(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="dimension 5 differs"):
        acc.add(np.zeros((3, 5)))


def test_cli_errors(tmp_path, caplog):
    assert main(["--data_dir", str(tmp_path)]) == 1
    assert "feats.scp: no such file" in caplog.text
    (tmp_path / "feats.scp").write_text(f"u1 {tmp_path}/missing.ark:5\n")
    assert main(["--data_dir", str(tmp_path)]) == 1
    assert "missing.ark:5" in caplog.text
    make_feats(tmp_path)
    assert main(["--data_dir", str(tmp_path), "--max_utts", "0"]) == 1
    assert not (tmp_path / "stats.json").exists()
