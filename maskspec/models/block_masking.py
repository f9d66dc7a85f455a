"""Which patches a pre-training view hides: random, block or inverse-block masks with the exact mask ratio.

Masks are expressed as a score per patch ([N, L], patch order ``f * T_p + t``): ``random_masking`` keeps the
L_keep patches with the lowest scores, so any score gives exactly ``num_keep(L, mask_ratio)`` visible patches.

* ``random``: uniform noise (the paper's masking; ``random_masking`` draws it itself).
* ``block``: the hidden patches form rectangles of ``block = (freq, time)`` patches, so the model cannot fill a
  hole by copying its neighbours.
* ``inverse_block``: the *visible* patches form such rectangles (EAT, Chen et al. 2024: "inverse block"),
  everything around them is hidden.
* ``time_span``: the hidden patches form spans of whole patch columns (every frequency row), ``block[1]`` columns
  long, at uniform start positions (they may overlap and merge), as wav2vec 2.0, HuBERT and data2vec mask speech:
  a ``block`` mask whose rectangles are as tall as the grid, the last span cut column by column (at most one column
  partly hidden). ``block[0]`` is ignored.

Rectangles are placed one after another at uniform positions inside the grid (they may overlap); each patch
gets the round in which a rectangle first covered it, plus uniform noise in [0, 1). Sorting by that score takes
whole rectangles in placement order and cuts only the last one, at random, to hit the exact count. A patch no
rectangle covers (possible when the rounds run out) ranks after every covered one, in random order.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from maskspec.models.configs import MASK_TYPES
from maskspec.utils.rand import rand, randint

# Rounds of rectangles per sample: enough to cover 1 - e^-3 = 95 % of the grid's cells on average, more than
# the 75 % hidden (block) or 25 % visible (inverse_block) needed; a shortfall is filled at random.
COVER_FACTOR = 3.0


def block_rounds(grid: tuple[int, int], block: tuple[int, int]) -> int:
    """Rectangles drawn per sample for a (F_p, T_p) grid and a (freq, time) block clipped to the grid."""
    f_p, t_p = grid
    bf, bt = min(block[0], f_p), min(block[1], t_p)
    return int(math.ceil(COVER_FACTOR * f_p * t_p / (bf * bt))) + 1


def first_cover_round(n: int, grid: tuple[int, int], block: tuple[int, int], generator: Optional[torch.Generator],
                      device: torch.device) -> torch.Tensor:
    """[n, F_p * T_p] int64: the 0-based round in which a rectangle of ``block`` first covered each patch, or
    the number of rounds for a patch never covered. Rectangles lie wholly inside the grid (block sizes larger
    than the grid are clipped to it)."""
    f_p, t_p = grid
    bf, bt = min(block[0], f_p), min(block[1], t_p)
    rounds = block_rounds(grid, block)
    # top-left corners
    sf = randint(0, f_p - bf + 1, (n, rounds, 1), generator, device)
    st = randint(0, t_p - bt + 1, (n, rounds, 1), generator, device)
    rows, cols = torch.arange(f_p, device=device), torch.arange(t_p, device=device)
    in_f = (rows >= sf) & (rows < sf + bf)  # [n, R, F_p]
    in_t = (cols >= st) & (cols < st + bt)  # [n, R, T_p]
    cover = (in_f.unsqueeze(-1) & in_t.unsqueeze(-2)).flatten(2)  # [n, R, L]
    first = cover.to(torch.uint8).argmax(dim=1)  # argmax returns the first maximum: the first covering round
    return torch.where(cover.any(dim=1), first, torch.full_like(first, rounds))


def mask_scores(n: int, grid: tuple[int, int], mask_type: str, block: tuple[int, int],
                generator: Optional[torch.Generator] = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """[n, L] float scores for ``random_masking(..., noise=)``: the lowest ``num_keep`` of each row stay visible.

    Args:
        n: number of views (rows); each gets its own mask.
        grid: (F_p, T_p) patch grid, L = F_p * T_p.
        mask_type: one of MASK_TYPES.
        block: (freq, time) rectangle size in patches for the block types.
    """
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    if min(block) < 1:
        raise ValueError(f"mask block sizes must be positive, got {block}")
    device = torch.device(device)
    noise = rand((n, grid[0] * grid[1]), generator, device)
    if mask_type == "random":
        return noise
    if mask_type == "time_span":
        # spans as tall as the grid; within a span, whole columns first (the cut one keeps its earlier columns
        # visible), so at most one column of a view is partly hidden
        block = (grid[0], block[1])
        first = first_cover_round(n, grid, block, generator, device).to(noise.dtype)
        column = torch.arange(grid[1], device=device, dtype=noise.dtype).repeat(grid[0])
        return block_rounds(grid, block) - first + (column + noise) / grid[1]
    first = first_cover_round(n, grid, block, generator, device).to(noise.dtype)
    if mask_type == "inverse_block":
        return first + noise  # rectangles placed first are visible
    return block_rounds(grid, block) - first + noise  # rectangles placed first are hidden

