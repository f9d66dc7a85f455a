import pytest
import torch

from maskspec.models.masking import num_keep, random_keep, random_masking


def _tokens(b=4, n=20, d=3):
    # each token carries its own index so we can see where it went
    return torch.arange(n, dtype=torch.float32).view(1, n, 1).expand(b, n, d).clone()


def test_ratio_and_partition():
    x = _tokens(4, 20)
    vis, mask, ids_restore = random_masking(x, 0.75)
    assert vis.shape == (4, 5, 3) and mask.shape == (4, 20) and ids_restore.shape == (4, 20)
    assert torch.equal(mask.sum(1), torch.full((4,), 15.0))
    for b in range(4):
        visible = set(vis[b, :, 0].long().tolist())
        masked = set(torch.nonzero(mask[b]).flatten().tolist())
        assert len(visible) == 5 and visible.isdisjoint(masked)
        assert visible | masked == set(range(20))
        # ids_restore undoes the shuffle: [visible, masked-in-shuffle-order] gathered back gives 0..L-1
        order = torch.cat([vis[b, :, 0], torch.tensor(sorted(masked, key=lambda i: ids_restore[b, i].item()),
                                                      dtype=torch.float32)])
        assert torch.equal(order[ids_restore[b]], torch.arange(20, dtype=torch.float32))


def test_per_sample_masks_differ():
    _, mask, _ = random_masking(_tokens(8, 50), 0.5)
    assert len({tuple(m.tolist()) for m in mask}) == 8


def test_generator_reproducible():
    x = _tokens(3, 30)
    a = random_masking(x, 0.6, torch.Generator().manual_seed(1))
    b = random_masking(x, 0.6, torch.Generator().manual_seed(1))
    c = random_masking(x, 0.6, torch.Generator().manual_seed(2))
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    assert not torch.equal(a[1], c[1])


def test_num_keep_rounding_and_errors():
    assert num_keep(496, 0.75) == 124 and num_keep(10, 0.9) == 1 and num_keep(10, 0.0) == 10
    with pytest.raises(ValueError, match="no visible patch"):
        num_keep(3, 0.9)
    with pytest.raises(ValueError, match="mask_ratio"):
        random_masking(_tokens(), 1.0)


def test_random_keep_drops_per_sample_and_keeps_order():
    x = _tokens(6, 40)
    out = random_keep(x, 15, torch.Generator().manual_seed(0))
    assert out.shape == (6, 25, 3)
    kept = out[..., 0]
    assert torch.all(kept[:, 1:] > kept[:, :-1])  # original order, no duplicates
    assert len({tuple(k.tolist()) for k in kept}) == 6
    assert random_keep(x, 0) is x
    with pytest.raises(ValueError, match="num_drop"):
        random_keep(x, 40)
