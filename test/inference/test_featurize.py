"""Features from raw audio with a model file's settings (maskspec-infer, maskspec-embed, maskspec.hear)."""
import numpy as np
import pytest
import torch

from maskspec.inference.featurize import featurize


def test_featurize_uses_model_file_settings():
    mf = dict(fbank_config=dict(sample_rate=16000, num_mel_bins=32), normalize="per_bin",
              stats=dict(mean=[1.0] * 32, std=[2.0] * 32, global_mean=0.0, global_std=1.0))
    rng = np.random.default_rng(0)
    stereo = rng.standard_normal((2, 8000)).astype(np.float32) * 0.1
    feats = featurize(stereo, 8000, mf)  # 1 s at 8 kHz, resampled to 16 kHz: 98 frames of 10 ms
    assert feats.shape == (98, 32) and feats.dtype == np.float32
    from maskspec.features.fbank import FbankConfig, compute_fbank
    raw = compute_fbank(stereo, 8000, FbankConfig(sample_rate=16000, num_mel_bins=32))
    assert feats == pytest.approx((raw - 1.0) / 2.0, abs=1e-5)


def test_featurize_tensor_gives_the_numpy_path_s_features_as_a_tensor():
    mf = dict(fbank_config=dict(sample_rate=16000, num_mel_bins=24), normalize="global",
              stats=dict(mean=[0.0] * 24, std=[1.0] * 24, global_mean=-5.0, global_std=3.0))
    stereo = np.random.default_rng(1).standard_normal((2, 12000)).astype(np.float32) * 0.1
    want = featurize(stereo, 24000, mf)
    got = featurize(torch.from_numpy(stereo), 24000, mf)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.shape == want.shape == (48, 24)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    with pytest.raises(ValueError, match="NaN or inf"):
        featurize(torch.full((1, 16000), float("nan")), 16000, mf)
