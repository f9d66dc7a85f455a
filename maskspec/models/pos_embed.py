"""Fixed 2-D sin-cos positional embeddings over the patch grid (F_p, T_p).

Half the channels encode the frequency index f, the other half the time index t; each half is
[sin(pos * w_k), cos(pos * w_k)] with w_k = 10000^(-k / (D/4)). Being fixed, they exist for any grid: a clip
longer or shorter than the pre-training length gets positions for its own grid, and time column t means the
same thing at every length ("extend"). "interpolate" instead stretches the pre-training grid bilinearly onto
the new grid (the AST/ViT way of adapting learned positions), kept for comparison.

"learned" (`LearnedPosEmbed`) is a trained table for the pre-training grid, as timm's ViT has; it exists to
take imported checkpoints (maskspec-import) exactly. A grid with the same rows and fewer columns takes the
first columns (column t keeps its code, as "extend"); any other grid gets the table resized bilinearly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from maskspec.models.configs import POS_EMBED_MODES

SINCOS_MODES = tuple(m for m in POS_EMBED_MODES if m != "learned")


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """[N] positions -> [N, dim] (first half sin, second half cos), float64."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding dim must be even, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    angles = positions.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_2d(dim: int, grid_f: int, grid_t: int) -> torch.Tensor:
    """Fixed embeddings [L, D] for a (grid_f, grid_t) grid, L = grid_f * grid_t in row-major (f, t) order."""
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding dim must be divisible by 4, got {dim}")
    f_idx = torch.arange(grid_f).repeat_interleave(grid_t)  # f of patch f * T_p + t
    t_idx = torch.arange(grid_t).repeat(grid_f)
    emb = torch.cat([sincos_1d(dim // 2, f_idx), sincos_1d(dim // 2, t_idx)], dim=1)
    return emb.to(torch.float32)


def interpolate_pos_embed(pe: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of [L, D] embeddings from old_grid to new_grid -> [L', D].

    align_corners=True keeps the four corner embeddings exactly and spreads the rest evenly in between.
    """
    f_o, t_o = old_grid
    if pe.dim() != 2 or pe.shape[0] != f_o * t_o:
        raise ValueError(f"pos embed of shape {tuple(pe.shape)} does not match grid {old_grid}")
    if tuple(new_grid) == tuple(old_grid):
        return pe
    d = pe.shape[1]
    img = pe.reshape(1, f_o, t_o, d).permute(0, 3, 1, 2)  # [1, D, F_p, T_p]
    out = F.interpolate(img.float(), size=tuple(new_grid), mode="bilinear", align_corners=True)
    return out.permute(0, 2, 3, 1).reshape(-1, d).to(pe.dtype)


class SinCosPosEmbed(nn.Module):
    """Fixed positions for any grid; no parameters and no buffers, so state_dict shapes never depend on length.

    Tables are cached per (grid, device, dtype) in a plain dict; the cache is rebuilt lazily after `.to()`.
    """

    _MAX_CACHE = 64  # variable-length inference touches many grids; keep memory bounded

    def __init__(self, dim: int, base_grid: tuple[int, int], mode: str = "extend"):
        super().__init__()
        if mode not in SINCOS_MODES:
            raise ValueError(f"sin-cos pos_embed mode must be one of {SINCOS_MODES}, got {mode!r}")
        self.dim = dim
        self.base_grid = tuple(base_grid)
        self.mode = mode
        self._cache: dict = {}

    def table(self, grid: tuple[int, int]) -> torch.Tensor:
        """[L, D] float32 embeddings for `grid` on the CPU (uncached)."""
        grid = tuple(grid)
        if self.mode == "extend" or grid == self.base_grid:
            return sincos_2d(self.dim, *grid)
        return interpolate_pos_embed(sincos_2d(self.dim, *self.base_grid), self.base_grid, grid)

    def forward(self, grid: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        """[L, D] embeddings for `grid`, on the device and in the dtype of `like`."""
        key = (tuple(grid), like.device, like.dtype)
        pe = self._cache.get(key)
        if pe is None:
            if len(self._cache) >= self._MAX_CACHE:
                self._cache.clear()
            pe = self.table(grid).to(device=like.device, dtype=like.dtype)
            self._cache[key] = pe
        return pe

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base_grid={self.base_grid}, mode={self.mode}"


def resize_table(table: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """[F_o * T_o, D] learned positions -> [F_n * T_n, D]: the first columns when only time is shorter, else
    `interpolate_pos_embed` (differentiable either way)."""
    (f_o, t_o), (f_n, t_n) = old_grid, new_grid
    if f_n == f_o and t_n <= t_o:
        return table.reshape(f_o, t_o, -1)[:, :t_n].reshape(f_n * t_n, -1)
    return interpolate_pos_embed(table, old_grid, new_grid)


class LearnedPosEmbed(nn.Module):
    """Learned positions `table` [F_p * T_p, D] for `base_grid`, row-major (f, t); initialised to the sin-cos
    table, as MAE initialises its (frozen) one."""

    def __init__(self, dim: int, base_grid: tuple[int, int]):
        super().__init__()
        self.base_grid = tuple(base_grid)
        self.table = nn.Parameter(sincos_2d(dim, *self.base_grid))

    def forward(self, grid: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        """[L, D] positions for `grid`, in the dtype of `like`."""
        pe = self.table if tuple(grid) == self.base_grid else resize_table(self.table, self.base_grid, tuple(grid))
        return pe.to(like.dtype)

    def adapt(self, table: torch.Tensor) -> torch.Tensor:
        """A table trained for another number of time columns (same rows), resized to `base_grid`: what a
        fine-tuning run with another `num_frames` loads."""
        f_p = self.base_grid[0]
        if table.dim() != 2 or table.shape[1] != self.table.shape[1] or table.shape[0] % f_p:
            raise ValueError(f"learned pos_embed of shape {tuple(table.shape)} does not fit {f_p} frequency rows "
                             f"of {self.table.shape[1]} channels")
        return resize_table(table, (f_p, table.shape[0] // f_p), self.base_grid)

    def extra_repr(self) -> str:
        return f"base_grid={self.base_grid}"


def make_pos_embed(dim: int, base_grid: tuple[int, int], mode: str) -> nn.Module:
    """The positional module of a `ModelConfig.pos_embed` mode: fixed sin-cos or a learned table."""
    return LearnedPosEmbed(dim, base_grid) if mode == "learned" else SinCosPosEmbed(dim, base_grid, mode)
