"""Token masking for pre-training (random_masking) and patch-out for fine-tuning (random_keep).

Both draw independent uniform noise per sample and keep the tokens with the smallest noise, so every
sample of a batch gets its own random subset while the batch stays a dense tensor.
"""
from __future__ import annotations

from typing import Optional

import torch

from maskspec.models.configs import check_mask_ratio
from maskspec.utils.rand import rand


def num_keep(num_tokens: int, mask_ratio: float) -> int:
    """L_keep = int(L * (1 - ratio)); the tiny epsilon stops 10 * (1 - 0.9) = 0.99999... rounding down to 0."""
    check_mask_ratio(mask_ratio)
    keep = int(num_tokens * (1.0 - mask_ratio) + 1e-6)
    if keep < 1:
        raise ValueError(f"mask_ratio {mask_ratio} leaves no visible patch out of {num_tokens}")
    return keep


def random_masking(x: torch.Tensor, mask_ratio: float, generator: Optional[torch.Generator] = None,
                   noise: Optional[torch.Tensor] = None):
    """Keep a random subset of tokens per sample.

    Args:
        x: [B, L, D] tokens.
        mask_ratio: fraction of tokens to hide, in [0, 1).
        generator: optional torch.Generator for reproducible masks.
        noise: optional [B, L] scores to use instead of uniform noise: the tokens with the lowest scores stay
            visible (block masks: maskspec.models.block_masking.mask_scores).
    Returns:
        x_visible [B, L_keep, D] (kept tokens, in random order), mask [B, L] float (1 = masked, in the
        original order), ids_restore [B, L] (gathering [visible, masked] tokens with it restores the order).
    """
    if x.dim() != 3:
        raise ValueError(f"random_masking expects [B, L, D], got shape {tuple(x.shape)}")
    b, n, d = x.shape
    keep = num_keep(n, mask_ratio)
    if noise is None:
        noise = rand(x.shape[:2], generator, x.device)
    elif noise.shape != (b, n):
        raise ValueError(f"random_masking: noise {tuple(noise.shape)} does not match tokens {(b, n)}")
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: the first `keep` are visible
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :keep]
    x_visible = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
    mask = torch.ones(b, n, device=x.device, dtype=x.dtype)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return x_visible, mask, ids_restore


def random_keep(x: torch.Tensor, num_drop: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Unstructured patch-out: drop `num_drop` random tokens per sample.

    Args:
        x: [B, L, D] tokens (positions already added).
        num_drop: tokens removed from each sample, 0 <= num_drop < L.
    Returns:
        [B, L - num_drop, D], kept tokens in their original order.
    """
    if x.dim() != 3:
        raise ValueError(f"random_keep expects [B, L, D], got shape {tuple(x.shape)}")
    b, n, d = x.shape
    if not 0 <= num_drop < n:
        raise ValueError(f"patch-out num_drop={num_drop} must be in [0, {n}) for {n} tokens")
    if num_drop == 0:
        return x
    ids_keep = torch.argsort(rand(x.shape[:2], generator, x.device), dim=1)[:, : n - num_drop]
    ids_keep, _ = torch.sort(ids_keep, dim=1)
    return torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
