"""The 2-D CNN decoder of the bootstrap objective (EAT's / data2vec 2.0's light decoder, written here).

The student's visible patch tokens are projected to ``dim`` channels and put back on the patch grid; the hidden
positions get a learned mask token. ``depth`` layers of a grouped ``kernel x kernel`` convolution over the
(F_p, T_p) grid, a LayerNorm over the channels and GELU, each with a residual connection, then a per-patch
linear layer to ``out_dim`` (the teacher's target width). No positions are needed: the convolutions see
where each patch is.
"""
from __future__ import annotations

import torch
from torch import nn

from maskspec.models.transformer import LAYER_NORM_EPS, init_weights


class ConvLayer(nn.Module):
    """x + GELU(LayerNorm_channels(Conv2d(x))) on [N, C, F_p, T_p]."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=groups)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.act(y)


class CNNDecoder(nn.Module):
    """Predicts a ``out_dim`` vector for every patch from the encoder's output on the visible ones."""

    def __init__(self, embed_dim: int, dim: int, depth: int, kernel: int, groups: int, out_dim: int):
        super().__init__()
        if dim % groups:
            raise ValueError(f"CNN decoder: {dim} channels are not divisible into {groups} groups")
        self.embed = nn.Linear(embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.layers = nn.ModuleList(ConvLayer(dim, kernel, groups) for _ in range(depth))
        self.pred = nn.Linear(dim, out_dim)
        self.apply(init_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """latent [N, 1 + L_keep, D] (cls first, dropped), ids_restore [N, L] -> predictions [N, L, out_dim] in
        patch order (``f * T_p + t``)."""
        f_p, t_p = grid
        n, length = ids_restore.shape
        if length != f_p * t_p:
            raise ValueError(f"CNN decoder: {length} patches do not fill the grid {grid}")
        y = self.embed(latent[:, 1:])
        dim = y.shape[-1]
        fill = self.mask_token.to(y.dtype).expand(n, length - y.shape[1], -1)
        y = torch.cat([y, fill], dim=1)
        y = torch.gather(y, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dim))  # [N, L, C] in patch order
        y = y.transpose(1, 2).reshape(n, dim, f_p, t_p)
        for layer in self.layers:
            y = layer(y)
        return self.pred(y.flatten(2).transpose(1, 2))
