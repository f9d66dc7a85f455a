"""Class-balanced weights (hand-computed) and the weighted distributed sampler."""
import numpy as np
import pytest

from maskspec.data.balanced import WeightedDistributedSampler, class_balanced_weights


def test_weights_by_hand():
    # class counts: a=3, b=1, c=0 -> class weights 1000/103, 1000/101, 1000/100
    targets = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]])
    w = class_balanced_weights(targets)
    assert w == pytest.approx([1000 / 103, 1000 / 103 + 1000 / 101, 1000 / 103, 0.0])
    with pytest.raises(ValueError, match=r"\[N, C\]"):
        class_balanced_weights(np.zeros(3))


def test_ranks_draw_disjoint_parts_and_are_deterministic():
    w = np.arange(1, 21, dtype=float)
    samplers = [WeightedDistributedSampler(w, 101, rank=r, world_size=4, seed=7) for r in range(4)]
    for s in samplers:
        s.set_epoch(3)
    parts = [list(s) for s in samplers]
    assert all(len(p) == len(s) == 26 for p, s in zip(parts, samplers))  # 101 rounded up to 104
    full = samplers[0].global_draw()
    # rank r holds positions r, r + 4, ...: together the ranks cover the draw exactly once
    interleaved = np.stack(parts, axis=1).reshape(-1)
    assert np.array_equal(interleaved, full)
    assert parts[0] != parts[1]
    # same (seed, epoch) -> same draw; another epoch or seed -> another draw
    again = WeightedDistributedSampler(w, 101, rank=2, world_size=4, seed=7)
    again.set_epoch(3)
    assert list(again) == parts[2]
    again.set_epoch(4)
    assert list(again) != parts[2]
    other = WeightedDistributedSampler(w, 101, rank=2, world_size=4, seed=8)
    other.set_epoch(3)
    assert list(other) != parts[2]


def test_draw_follows_weights_and_skips_zero_weight():
    w = np.array([0.0, 1.0, 3.0])
    s = WeightedDistributedSampler(w, 20000, seed=0)
    counts = np.bincount(list(s), minlength=3)
    assert counts[0] == 0
    assert counts[2] / counts[1] == pytest.approx(3.0, rel=0.1)


@pytest.mark.parametrize("kw, msg", [
    (dict(weights=[0.0, 0.0], num_samples=4), "not all 0"),
    (dict(weights=[1.0, -1.0], num_samples=4), ">= 0"),
    (dict(weights=[1.0], num_samples=0), "num_samples"),
    (dict(weights=[1.0], num_samples=4, rank=2, world_size=2), "rank"),
])
def test_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        WeightedDistributedSampler(**kw)
