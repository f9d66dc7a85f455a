"""Augmentation: shapes kept, the intended effect happens, reproducible with a generator."""
import math

import pytest
import torch

from maskspec.tasks.augment import (KALDI_EPS, AugmentConfig, LogMelScale, augment_batch, background_mix, mixup,
                                    power_augment, random_filter, random_gain, random_response, spec_augment,
                                    time_shift)


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


# ------------------------------------------------------------------- gain, filter, background (power domain)
F = 8
STATS = dict(mean=[float(i) - 4.0 for i in range(F)], std=[0.5 + 0.25 * i for i in range(F)],
             global_mean=-1.0, global_std=2.0)


def _features(p, scale):
    """Normalised features of mel power p [B, T, F], computed as the fbank and FeatDataset would."""
    log_p = (p + scale.log_offset).log() if scale.log_offset > 0 else p.clamp_min(KALDI_EPS).log()
    return (log_p - scale.mean) / scale.std


@pytest.mark.parametrize("normalize", ["per_bin", "global", "none"])
def test_power_gain_is_exact_in_normalised_units(normalize):
    scale = LogMelScale.from_features(STATS if normalize != "none" else None, normalize, dict(log_offset=0.0))
    std = torch.tensor(STATS["std"]) if normalize == "per_bin" else torch.tensor(
        2.0 if normalize == "global" else 1.0)
    p = torch.rand(3, 10, F, generator=_gen(5)) * 100 + 0.01
    x = _features(p, scale)
    out = scale.power_gain(x, torch.tensor([7.0, -7.0, 0.0]).view(3, 1, 1))
    # +7 dB multiplies power by 10^0.7, i.e. adds 7 ln(10) / 10 = 1.6118 to the natural log, i.e. 1.6118 / std
    # in normalised units (per bin when the stats are per bin)
    shift = torch.tensor([7.0, -7.0, 0.0]).view(3, 1, 1) * math.log(10) / 10 / std
    assert torch.allclose(out - x, shift.expand_as(x), atol=1e-4)
    assert abs(7 * math.log(10) / 10 - 1.6118) < 1e-4


def test_power_gain_with_log_offset_and_floor():
    scale = LogMelScale.from_features(STATS, "per_bin", dict(log_offset=1e-5))
    p = torch.tensor([0.0, 1e-7, 1e-5, 1.0, 50.0, 0.5, 2e-6, 3.0]).view(1, 1, F)
    out = scale.power_gain(_features(p, scale), torch.tensor(7.0).view(1, 1, 1))
    # log(g p + c): exact, and silence (p = 0) stays at the floor log(c) instead of rising by 7 dB
    assert torch.allclose(out, _features(p * 10 ** 0.7, scale), atol=1e-3)
    assert torch.allclose(out[..., 0], _features(p, scale)[..., 0], atol=1e-4)
    kaldi = LogMelScale.from_features(STATS, "per_bin", dict(log_offset=0.0))
    down = kaldi.power_gain(_features(torch.full((1, 1, F), 1e-7), kaldi), torch.tensor(-7.0).view(1, 1, 1))
    assert torch.allclose(down, _features(torch.zeros(1, 1, F), kaldi), atol=1e-4)  # clamped at Kaldi's floor


def test_random_gain_within_range_constant_per_clip_reproducible():
    scale = LogMelScale.from_features(STATS, "per_bin", {})
    x = _features(torch.rand(16, 10, F, generator=_gen(6)) + 0.1, scale)
    out = random_gain(x, scale, 7.0, _gen(7))
    gain_db = (out - x) * scale.std / (math.log(10) / 10)  # [B, T, F], one value per clip
    assert torch.allclose(gain_db, gain_db[:, :1, :1].expand_as(gain_db), atol=1e-3)
    assert float(gain_db.abs().max()) <= 7.0 + 1e-3 and float(gain_db.std()) > 1.0
    assert torch.equal(out, random_gain(x, scale, 7.0, _gen(7)))
    assert not torch.equal(out, random_gain(x, scale, 7.0, _gen(8)))


def test_random_response_bounded_smooth_reproducible():
    for f, points in [(128, 5), (8, 2), (4, 9)]:
        r = random_response(64, f, 6.0, points, _gen(9))
        assert r.shape == (64, f)
        assert float(r.abs().max()) <= 6.0 and float(r.abs().max()) > 3.0
        bound = math.pi * 6.0 * (points - 1) / (f - 1)
        assert float(r.diff(dim=1).abs().max()) <= bound + 1e-5
        assert torch.equal(r, random_response(64, f, 6.0, points, _gen(9)))
    r = random_response(64, 128, 6.0, 5, _gen(9))
    # smooth: the second difference is far below the first (a random curve, not noise)
    assert float(r.diff(n=2, dim=1).abs().max()) < 0.1 * float(r.diff(dim=1).abs().max())


def test_random_filter_applies_response_per_bin():
    scale = LogMelScale.from_features(STATS, "per_bin", {})
    x = _features(torch.rand(4, 6, F, generator=_gen(10)) + 0.1, scale)
    out = random_filter(x, scale, 5.0, 3, _gen(11))
    resp = random_response(4, F, 5.0, 3, _gen(11))
    assert torch.allclose((out - x) * scale.std / (math.log(10) / 10), resp.unsqueeze(1).expand_as(x), atol=1e-3)


def test_background_mix_adds_power_at_snr_and_masks_background_labels():
    scale = LogMelScale.from_features(STATS, "per_bin", {})
    b, c = 6, 3
    # clip i: power 2^i in every bin and 100 times that in bin i, so the added background names its clip
    p = torch.ones(b, 5, F) + 99.0 * torch.eye(F)[:b].unsqueeze(1)
    p = p * (2.0 ** torch.arange(b, dtype=torch.float32)).view(b, 1, 1)
    y = torch.eye(c)[torch.tensor([0, 1, 2, 0, 1, 2])]
    known = torch.ones(b, c)
    known[5, 0] = 0
    x = _features(p, scale)
    out, known2 = background_mix(x, y, known, scale, 1.0, 10.0, 20.0, _gen(12))
    added = scale.to_power(out) - p  # k p_j: the same over frames
    assert torch.allclose(added, added[:, :1].expand_as(added), rtol=1e-3, atol=1e-3)
    mixed = 0
    for i in range(b):
        if float(added[i].abs().max()) < 1e-3 * float(p[i].mean()):
            assert torch.equal(known2[i], known[i]) and torch.equal(out[i], x[i])  # not chosen: untouched
            continue
        mixed += 1
        j = int(added[i, 0].argmax())
        expect_added = added[i, :, j:j + 1] / p[j, :, j:j + 1] * p[j]
        # atol: float32 exp/log of the clip's own (larger) power
        assert j != i and torch.allclose(added[i], expect_added, rtol=1e-3, atol=1e-6 * float(p[i].max()))
        snr_db = 10 * math.log10(float(p[i].mean() / added[i].mean()))
        assert 10.0 - 1e-3 <= snr_db <= 20.0 + 1e-3
        # the background's class becomes unknown unless it is the clip's own; nothing else changes
        expect = known[i].clone()
        if j % 3 != i % 3:
            expect[j % 3] = 0
        assert torch.equal(known2[i], expect)
    assert mixed >= 3
    assert torch.equal(background_mix(x, y, None, scale, 1.0, 10.0, 20.0, _gen(12))[0], out)
    assert torch.equal(background_mix(x, y, known, scale, 0.0, 10.0, 20.0, _gen(12))[0], x)


def test_power_augment_is_gain_filter_background_in_one_pass():
    scale = LogMelScale.from_features(STATS, "per_bin", dict(log_offset=1e-5))
    x = _features(torch.rand(6, 10, F, generator=_gen(15)) * 10 + 0.1, scale)  # away from the floor
    y = torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])]
    known = torch.ones(6, 3)
    cfg = AugmentConfig(gain_db=7.0, filter_db=5.0, filter_points=3, noise_prob=0.7)
    fused, known_f = power_augment(cfg, x, y, known, scale, _gen(16))
    g = _gen(16)
    step = random_filter(random_gain(x, scale, 7.0, g), scale, 5.0, 3, g)
    step, known_s = background_mix(step, y, known, scale, 0.7, 10.0, 30.0, g)
    assert torch.allclose(fused, step, atol=1e-4) and torch.equal(known_f, known_s)
    # near Kaldi's floor one pass keeps more: -20 dB then +20 dB in two passes clamps at eps in between
    kaldi = LogMelScale.from_features(STATS, "per_bin", dict(log_offset=0.0))
    quiet = _features(torch.full((1, 2, F), 1e-6), kaldi)
    down_up = kaldi.power_gain(kaldi.power_gain(quiet, torch.tensor(-20.0).view(1, 1, 1)),
                               torch.tensor(20.0).view(1, 1, 1))
    once = kaldi.power_gain(quiet, torch.tensor(-20.0 + 20.0).view(1, 1, 1))
    assert torch.allclose(once, quiet, atol=1e-4) and not torch.allclose(down_up, quiet, atol=1e-2)


def test_power_augmentation_off_is_identity_and_on_reproducible():
    scale = LogMelScale.from_features(STATS, "per_bin", {})
    x, y, known = torch.randn(4, 16, F), torch.eye(4), torch.ones(4, 4)
    off = augment_batch(AugmentConfig(), x, y, known, _gen(13), scale=scale)
    assert off[0] is x and off[1] is y and off[2] is known
    cfg = AugmentConfig(gain_db=7.0, filter_db=5.0, noise_prob=0.5, mixup=0.3, freqm=2, time_shift=3)
    a = augment_batch(cfg, x, y, known, _gen(14), scale=scale)
    b = augment_batch(cfg, x, y, known, _gen(14), scale=scale)
    assert all(torch.equal(u, v) for u, v in zip(a, b)) and not torch.equal(a[0], x)
    # a config without the new options draws exactly what it drew before they existed
    old = AugmentConfig(mixup=0.3, freqm=4, timem=8, time_shift=5)
    assert torch.equal(augment_batch(old, x, y, None, _gen(3), scale=scale)[0],
                       augment_batch(old, x, y, None, _gen(3))[0])
    with pytest.raises(ValueError, match="LogMelScale"):
        augment_batch(AugmentConfig(gain_db=7.0), x, y, None, _gen(3))
    energy = LogMelScale.from_features(STATS, "per_bin", dict(use_energy=True))
    with pytest.raises(ValueError, match="use_energy"):
        augment_batch(AugmentConfig(gain_db=7.0), x, y, None, _gen(3), scale=energy)


@pytest.mark.parametrize("bad, msg", [
    (dict(gain_db=-1.0), "gain_db must be >= 0"),
    (dict(gain_db=float("nan")), "gain_db must be a finite float"),
    (dict(gain_db="7"), "gain_db must be a finite float"),
    (dict(filter_db=-3.0), "filter_db must be >= 0"),
    (dict(filter_points=1), "filter_points must be >= 2"),
    (dict(filter_points=2.5), "filter_points must be a finite int"),
    (dict(noise_prob=1.5), "noise_prob must be in"),
    (dict(noise_snr_min=30.0, noise_snr_max=10.0), "noise_snr_min"),
    (dict(mixup_prob=-0.1), "mixup_prob must be in"),
    (dict(time_shift=True), "time_shift must be a finite int"),
])
def test_bad_options_rejected(bad, msg):
    with pytest.raises(ValueError, match=msg):
        AugmentConfig(**bad)


def test_options_reach_the_config_from_the_command_line():
    from maskspec.bin import finetune

    argv = ["--train_data", "d", "--exp_dir", "e", "--init", "none"]
    args = finetune.build_parser().parse_args([*argv, "--gain_db", "7", "--filter_db", "5", "--filter_points", "4",
                                               "--noise_prob", "0.25", "--noise_snr_min", "5", "--mixup", "0.3"])
    cfg = AugmentConfig.from_args(args)
    assert (cfg.gain_db, cfg.filter_db, cfg.filter_points, cfg.noise_prob, cfg.noise_snr_min, cfg.mixup) == (
        7.0, 5.0, 4, 0.25, 5.0, 0.3)
    assert AugmentConfig.from_args(finetune.build_parser().parse_args(argv)) == AugmentConfig()
    with pytest.raises(ValueError, match="noise_snr_min"):
        finetune.check_args(finetune.build_parser().parse_args([*argv, "--noise_snr_max", "0"]))
