"""ViT transformer block. Pre-norm (MAE/timm, ours): x + DropPath(Attn(LN1(x))), then x + DropPath(Mlp(LN2(x))).
Post-norm (``post_norm``; data2vec 2.0's AltBlock with ``layer_norm_first: false``, which EAT uses):
LN1(x + DropPath(Attn(x))), then LN2(x + DropPath(Mlp(x))).

Attention runs through `torch.nn.functional.scaled_dot_product_attention`, which picks a flash or
memory-efficient kernel on GPU and a plain math kernel on CPU. An optional key-padding mask `valid` [B, N] (True =
a real token) keeps padded tokens out of every query's attention; without it nothing changes.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-6  # as MAE/ViT; PyTorch's default 1e-5 would change pre-trained activations slightly


class Attention(nn.Module):
    """Multi-head self-attention over [B, N, D] tokens."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention dim {dim} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """[B, N, D] -> [B, N, D]; ``valid`` [B, N] bool: keys that may be attended to (None: all)."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, N, d_h]
        if valid is None:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            if valid.shape != (b, n):
                raise ValueError(f"attention: key mask {tuple(valid.shape)} does not match tokens {(b, n)}")
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """Two-layer GELU MLP: [B, N, D] -> [B, N, D] through a hidden width."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch for a random subset of samples, rescale the others.

    Identity at eval time; use `nn.Identity` instead for probability 0 (see `Block`).
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop_path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)  # one draw per sample
        return x * x.new_empty(shape).bernoulli_(keep) / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Block(nn.Module):
    """Transformer block over [B, N, D]: pre-norm, or post-norm with ``post_norm`` (same parameters)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 qkv_bias: bool = True, post_norm: bool = False):
        super().__init__()
        self.post_norm = post_norm
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """[B, N, D] -> [B, N, D]; ``valid`` [B, N]: the key-padding mask of `Attention` (None: no padding)."""
        if self.post_norm:
            x = self.norm1(x + self.drop_path(self.attn(x, valid)))
            return self.norm2(x + self.drop_path(self.mlp(x)))
        x = x + self.drop_path(self.attn(self.norm1(x), valid))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return "post_norm=True" if self.post_norm else ""


def init_weights(module: nn.Module) -> None:
    """MAE initialisation, applied with `model.apply(init_weights)`: xavier-uniform Linear weights with zero
    bias, LayerNorm to identity. Patch embedding and tokens are initialised by their owners."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
