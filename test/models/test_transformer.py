import math

import pytest
import torch
from torch import nn

from maskspec.models.transformer import Attention, Block, DropPath


def naive_attention(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """Reference multi-head attention written out with an explicit softmax."""
    b, n, d = x.shape
    h = attn.num_heads
    q, k, v = attn.qkv(x).split(d, dim=-1)
    q, k, v = (t.view(b, n, h, d // h).transpose(1, 2) for t in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h), dim=-1)
    return attn.proj((weights @ v).transpose(1, 2).reshape(b, n, d))


@pytest.mark.parametrize("qkv_bias", [True, False])
def test_sdpa_matches_naive_softmax_attention(qkv_bias):
    torch.manual_seed(0)
    attn = Attention(32, 4, qkv_bias=qkv_bias)
    x = torch.randn(3, 17, 32)
    torch.testing.assert_close(attn(x), naive_attention(attn, x), rtol=0, atol=1e-5)
    assert (attn.qkv.bias is not None) == qkv_bias


def test_block_is_pre_norm_residual_and_drop_path_identity_at_zero():
    torch.manual_seed(0)
    block = Block(16, 2, mlp_ratio=2.0).eval()
    assert isinstance(block.drop_path, nn.Identity) and block.mlp.fc1.out_features == 32
    x = torch.randn(2, 5, 16)
    h = x + naive_attention(block.attn, block.norm1(x))
    expected = h + block.mlp(block.norm2(h))
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_drop_path_drops_whole_samples_in_training_only():
    torch.manual_seed(0)
    dp = DropPath(0.5)
    x = torch.ones(400, 3, 2)
    y = dp(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}  # kept samples rescaled by 1 / keep
    assert torch.all(per_sample.min(1).values == per_sample.max(1).values)
    assert 120 < (per_sample[:, 0] == 0).sum() < 280
    dp.eval()
    assert torch.equal(dp(x), x)
    with pytest.raises(ValueError):
        DropPath(1.0)
