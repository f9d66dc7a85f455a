"""Spectrogram <-> patches.

A spectrogram `x: [B, T, F]` (frames, mel bins) is treated as a one-channel image `[B, 1, F, T]`: mel bins are
the height, time the width. It is cut into non-overlapping patches of `p_f` mel bins x `p_t` frames on a grid
`(F_p, T_p) = (F // p_f, T // p_t)`; frames (and mel bins) beyond a multiple of the patch are cropped, so a
1000-frame clip uses its first 992 frames with 16 x 16 patches. A patch shape is given as one int `p` (square,
`p x p`, the paper's) or a pair `(p_f, p_t)` (e.g. `(128, 2)`: frame patches spanning every mel bin).

Patch order, used everywhere in maskspec.models: row-major over (F_p, T_p), i.e. patch index `f * T_p + t`.
Inside a patch, values are row-major over (mel offset i, frame offset j): value index `i * p_t + j`, the same
layout as the Conv2d kernel of `PatchEmbed`, so a flattened kernel acts on a patchified vector.
"""
from __future__ import annotations

from typing import Union

import torch
from torch import nn

PatchShape = Union[int, tuple[int, int]]


def patch_dims(p: PatchShape) -> tuple[int, int]:
    """(mel bins, frames) of a patch given as one int (square) or a (freq, time) pair."""
    pf, pt = (p, p) if isinstance(p, int) else (int(p[0]), int(p[1]))
    if pf < 1 or pt < 1:
        raise ValueError(f"patch shape must be positive, got {p}")
    return pf, pt


def patch_grid(num_frames: int, num_mel_bins: int, p: PatchShape) -> tuple[int, int]:
    """Grid (F_p, T_p) of a [T, F] spectrogram; ValueError when it holds no full patch."""
    pf, pt = patch_dims(p)
    if num_frames < pt or num_mel_bins < pf:
        raise ValueError(f"spectrogram of {num_frames} frames x {num_mel_bins} mel bins is smaller than one "
                         f"{pf}x{pt} patch (mel bins x frames)")
    return num_mel_bins // pf, num_frames // pt


def patchify(x: torch.Tensor, p: PatchShape) -> torch.Tensor:
    """[B, T, F] -> [B, L, p_f*p_t] with L = F_p * T_p (trailing frames/bins cropped)."""
    if x.dim() != 3:
        raise ValueError(f"patchify expects [B, T, F], got shape {tuple(x.shape)}")
    pf, pt = patch_dims(p)
    b, t, f = x.shape
    f_p, t_p = patch_grid(t, f, (pf, pt))
    x = x[:, : t_p * pt, : f_p * pf].reshape(b, t_p, pt, f_p, pf)  # [B, t, j, f, i]
    return x.permute(0, 3, 1, 4, 2).reshape(b, f_p * t_p, pf * pt)  # [B, (f, t), (i, j)]


def unpatchify(patches: torch.Tensor, p: PatchShape, grid: tuple[int, int]) -> torch.Tensor:
    """[B, L, p_f*p_t] -> [B, T_p*p_t, F_p*p_f]; exact inverse of `patchify` on the cropped spectrogram."""
    pf, pt = patch_dims(p)
    f_p, t_p = grid
    if patches.dim() != 3 or patches.shape[1] != f_p * t_p or patches.shape[2] != pf * pt:
        raise ValueError(f"unpatchify expects [B, {f_p * t_p}, {pf * pt}] for grid {grid} and a {pf}x{pt} patch, "
                         f"got shape {tuple(patches.shape)}")
    b = patches.shape[0]
    x = patches.reshape(b, f_p, t_p, pf, pt)  # [B, f, t, i, j]
    return x.permute(0, 2, 4, 1, 3).reshape(b, t_p * pt, f_p * pf)  # [B, (t, j), (f, i)]


class PatchEmbed(nn.Module):
    """Linear embedding of each p_f x p_t patch, as a Conv2d with that kernel and stride over the [B, 1, F, T]
    image.

    The convolution ignores the trailing `T % p_t` frames and `F % p_f` bins: the same crop as `patchify`.
    """

    def __init__(self, patch_size: PatchShape, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.patch_shape = patch_dims(patch_size)
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=self.patch_shape, stride=self.patch_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> [B, L, D], L = F_p * T_p in row-major (f, t) order."""
        if x.dim() != 3:
            raise ValueError(f"PatchEmbed expects [B, T, F], got shape {tuple(x.shape)}")
        patch_grid(x.shape[1], x.shape[2], self.patch_size)
        x = self.proj(x.transpose(1, 2).unsqueeze(1))  # [B, D, F_p, T_p]
        return x.flatten(2).transpose(1, 2)
