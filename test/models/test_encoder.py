import pytest
import torch

from maskspec.models.configs import model_config
from maskspec.models.encoder import MaskSpecEncoder

SMALL = dict(patch_size=8, num_mel_bins=32, num_frames=64, embed_dim=32, depth=3, num_heads=2,
             decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2)


def _encoder(**kw):
    torch.manual_seed(0)
    return MaskSpecEncoder(model_config("tiny", **{**SMALL, **kw})).eval()


def test_shapes_for_full_masked_and_patch_out_inputs():
    enc = _encoder()
    x = torch.randn(2, 64, 32)  # grid 4 x 8 = 32 patches
    assert enc.grid(64) == (4, 8) and enc.grid(71) == (4, 8)
    tokens, mask, ids = enc(x)
    assert tokens.shape == (2, 33, 32) and mask is None and ids is None
    tokens, mask, ids = enc(x, mask_ratio=0.75)
    assert tokens.shape == (2, 9, 32) and mask.shape == (2, 32) and ids.shape == (2, 32)
    tokens, mask, ids = enc(x, num_drop=10)
    assert tokens.shape == (2, 23, 32) and mask is None


@pytest.mark.parametrize("mode", ["extend", "interpolate"])
def test_any_length_runs(mode):
    enc = _encoder(pos_embed=mode)
    for frames in (16, 40, 200):
        assert enc(torch.randn(1, frames, 32))[0].shape == (1, 1 + 4 * (frames // 8), 32)
    assert enc.state_dict().keys() == _encoder(pos_embed=mode).state_dict().keys()


def test_visible_encoding_ignores_masked_content():
    enc = _encoder()
    x = torch.randn(2, 64, 32)
    tokens, mask, _ = enc(x, mask_ratio=0.5, generator=torch.Generator().manual_seed(3))
    # overwrite every masked patch; the encoder must not see the difference
    masked = mask.view(2, 4, 8).repeat_interleave(8, 1).repeat_interleave(8, 2).transpose(1, 2).bool()
    y = torch.where(masked, torch.randn_like(x) * 10, x)
    tokens2, mask2, _ = enc(y, mask_ratio=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(mask, mask2)
    torch.testing.assert_close(tokens, tokens2)
    tokens3, _, _ = enc(torch.where(masked, x, x + 1), mask_ratio=0.5, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(tokens, tokens3)


def test_mae_init_and_drop_path_schedule():
    enc = _encoder(drop_path=0.2)
    w = enc.patch_embed.proj.weight.view(32, -1)
    bound = (6 / (w.shape[0] + w.shape[1])) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound
    assert 0.01 < enc.cls_token.std() < 0.04
    assert torch.all(enc.blocks[0].attn.qkv.bias == 0)
    rates = [getattr(b.drop_path, "p", 0.0) for b in enc.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2])


def test_input_errors():
    enc = _encoder()
    with pytest.raises(ValueError, match=r"\[B, T, 32\]"):
        enc(torch.randn(1, 64, 40))
    with pytest.raises(ValueError, match="not both"):
        enc(torch.randn(1, 64, 32), mask_ratio=0.5, num_drop=2)
    with pytest.raises(ValueError, match="smaller than one"):
        enc(torch.randn(1, 4, 32))
    with pytest.raises(ValueError, match=r"encoder: mask_ratio must be in \[0, 1\), got -0.1"):
        enc(torch.randn(1, 64, 32), mask_ratio=-0.1)
