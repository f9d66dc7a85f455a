"""Spectrogram <-> patches.

A spectrogram `x: [B, T, F]` (frames, mel bins) is treated as a one-channel image `[B, 1, F, T]`: mel bins are
the height, time the width. It is cut into non-overlapping `p x p` patches on a grid `(F_p, T_p) =
(F // p, T // p)`; frames (and mel bins) beyond a multiple of `p` are cropped, so a 1000-frame clip uses its
first 992 frames with p = 16.

Patch order, used everywhere in maskspec.models: row-major over (F_p, T_p), i.e. patch index `f * T_p + t`.
Inside a patch, values are row-major over (mel offset i, frame offset j): value index `i * p + j`, the same
layout as the Conv2d kernel of `PatchEmbed`, so a flattened kernel acts on a patchified vector.
"""
from __future__ import annotations

import torch
from torch import nn


def patch_grid(num_frames: int, num_mel_bins: int, p: int) -> tuple[int, int]:
    """Grid (F_p, T_p) of a [T, F] spectrogram; ValueError when it holds no full patch."""
    if num_frames < p or num_mel_bins < p:
        raise ValueError(f"spectrogram of {num_frames} frames x {num_mel_bins} mel bins is smaller than one "
                         f"{p}x{p} patch")
    return num_mel_bins // p, num_frames // p


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """[B, T, F] -> [B, L, p*p] with L = F_p * T_p (trailing frames/bins cropped)."""
    if x.dim() != 3:
        raise ValueError(f"patchify expects [B, T, F], got shape {tuple(x.shape)}")
    b, t, f = x.shape
    f_p, t_p = patch_grid(t, f, p)
    x = x[:, : t_p * p, : f_p * p].reshape(b, t_p, p, f_p, p)  # [B, t, j, f, i]
    return x.permute(0, 3, 1, 4, 2).reshape(b, f_p * t_p, p * p)  # [B, (f, t), (i, j)]


def unpatchify(patches: torch.Tensor, p: int, grid: tuple[int, int]) -> torch.Tensor:
    """[B, L, p*p] -> [B, T_p*p, F_p*p]; exact inverse of `patchify` on the cropped spectrogram."""
    f_p, t_p = grid
    if patches.dim() != 3 or patches.shape[1] != f_p * t_p or patches.shape[2] != p * p:
        raise ValueError(f"unpatchify expects [B, {f_p * t_p}, {p * p}] for grid {grid} and p={p}, "
                         f"got shape {tuple(patches.shape)}")
    b = patches.shape[0]
    x = patches.reshape(b, f_p, t_p, p, p)  # [B, f, t, i, j]
    return x.permute(0, 2, 4, 1, 3).reshape(b, t_p * p, f_p * p)  # [B, (t, j), (f, i)]


class PatchEmbed(nn.Module):
    """Linear embedding of each p x p patch, as a stride-p Conv2d over the [B, 1, F, T] image.

    The convolution ignores the trailing `T % p` frames and `F % p` bins: the same crop as `patchify`.
    """

    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> [B, L, D], L = F_p * T_p in row-major (f, t) order."""
        if x.dim() != 3:
            raise ValueError(f"PatchEmbed expects [B, T, F], got shape {tuple(x.shape)}")
        patch_grid(x.shape[1], x.shape[2], self.patch_size)
        x = self.proj(x.transpose(1, 2).unsqueeze(1))  # [B, D, F_p, T_p]
        return x.flatten(2).transpose(1, 2)
