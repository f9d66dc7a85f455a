"""Augmentation: shapes kept, the intended effect happens, reproducible with a generator."""
import pytest
import torch

from maskspec.tasks.augment import AugmentConfig, augment_batch, mixup, spec_augment, time_shift


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_mixup_mixes_inputs_and_targets_consistently():
    b, t, f, c = 6, 20, 8, 4
    # Sample i is the constant i, so a mixture of i and j is lam*i + (1-lam)*j and identifies its partner.
    x = torch.arange(b, dtype=torch.float32).view(b, 1, 1).expand(b, t, f).clone()
    y = torch.eye(c)[torch.tensor([0, 1, 2, 3, 0, 1])]
    known = torch.ones(b, c)
    known[2, 3] = 0
    xm, ym, km, lam = mixup(x, y, known, alpha=0.5, generator=_gen())
    assert xm.shape == x.shape and ym.shape == y.shape and km.shape == known.shape
    assert torch.all(lam >= 0.5) and torch.all(lam <= 1.0)
    assert torch.allclose(ym.sum(dim=1), torch.ones(b))  # a mixture of two one-hot rows sums to 1
    for i in range(b):
        # recover the partner j from the input value: v = lam*i + (1-lam)*j
        v = xm[i, 0, 0]
        if lam[i] < 1.0 - 1e-6:
            j = round(float((v - lam[i] * i) / (1 - lam[i])))
            assert torch.allclose(ym[i], lam[i] * y[i] + (1 - lam[i]) * y[j], atol=1e-5)
            assert torch.equal(km[i], known[i] * known[j])
    assert torch.allclose(xm[:, 1:], xm[:, :1].expand(-1, t - 1, -1))  # the same lam over the whole clip
    x2, y2, _, _ = mixup(x, y, None, alpha=0.5, generator=_gen())
    assert torch.equal(x2, xm) and torch.equal(y2, ym)  # reproducible
    with pytest.raises(ValueError, match="alpha"):
        mixup(x, y, None, alpha=0.0)


def test_spec_augment_masks_bands_to_zero():
    x = torch.ones(8, 100, 32)
    out = spec_augment(x, freqm=10, timem=30, num_freq_masks=2, num_time_masks=1, generator=_gen(1))
    assert out.shape == x.shape
    zero = out == 0
    # A frequency mask zeroes whole columns of bins, a time mask whole rows of frames.
    cols = zero.all(dim=1)  # [B, F]
    rows = zero.all(dim=2)  # [B, T]
    assert torch.equal(zero, cols.unsqueeze(1) | rows.unsqueeze(2))
    assert int(cols.sum(dim=1).max()) <= 20 and int(rows.sum(dim=1).max()) <= 30
    assert int(cols.sum()) > 0 and int(rows.sum()) > 0
    for i in range(8):  # each time mask is one contiguous band
        idx = torch.nonzero(rows[i]).flatten()
        if idx.numel():
            assert int(idx[-1] - idx[0]) + 1 == idx.numel()
    assert not torch.equal(zero[0], zero[1])  # each sample draws its own bands
    assert torch.equal(spec_augment(x, 0, 0), x)


def test_time_shift_rolls_each_sample():
    b, t, f = 4, 50, 3
    x = torch.arange(t, dtype=torch.float32).view(1, t, 1).expand(b, t, f).contiguous()
    out = time_shift(x, max_shift=10, generator=_gen(2))
    assert out.shape == x.shape
    for i in range(b):
        src0 = int(out[i, 0, 0])  # out[0] = x[(-shift) mod T] = (-shift) mod T
        k = (-src0) % t
        assert k <= 10 or k >= t - 10
        assert torch.equal(out[i], torch.roll(x[i], shifts=k, dims=0))
    assert torch.equal(time_shift(x, 0), x)


def test_augment_batch_reproducible_and_noop_when_off():
    x, y = torch.randn(4, 64, 16), torch.eye(4)
    cfg = AugmentConfig(mixup=0.3, freqm=4, timem=8, time_shift=5)
    a = augment_batch(cfg, x, y, None, _gen(3))
    b = augment_batch(cfg, x, y, None, _gen(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] is None
    assert not torch.equal(a[0], x)
    off = augment_batch(AugmentConfig(), x, y, torch.ones(4, 4), _gen(3))
    assert torch.equal(off[0], x) and torch.equal(off[1], y)
