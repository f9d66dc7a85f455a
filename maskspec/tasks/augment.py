"""Training-time augmentation of batched, normalised spectrograms ``x [B, T, F]`` and their targets ``y [B, C]``.

Every function takes an optional ``torch.Generator`` so a run is reproducible, and works on the batch's device.
Features are normalised to zero mean per mel bin, so masked regions are set to 0 (the training-set mean).
Patch-out is not here: it happens inside the encoder (``AudioClassifier(x, num_drop=N)``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch


def _rand(shape, generator: Optional[torch.Generator], device) -> torch.Tensor:
    """Uniform [0, 1) noise drawn on the generator's device, moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def mixup(x: torch.Tensor, y: torch.Tensor, known: Optional[torch.Tensor], alpha: float,
          generator: Optional[torch.Generator] = None):
    """Mix each sample with a random other sample of the batch.

    lam ~ Beta(alpha, alpha) per sample, folded to lam >= 0.5 so the first clip stays dominant;
    x' = lam x + (1 - lam) x[perm], y' likewise; a label is known after mixing only if known in both clips.

    Args:
        x: [B, T, F]; y: [B, C] float targets; known: [B, C] (1 = annotated) or None.
    Returns:
        (x' [B, T, F], y' [B, C], known' [B, C] or None, lam [B])
    """
    if alpha <= 0:
        raise ValueError(f"mixup: alpha must be positive, got {alpha}")
    b = x.shape[0]
    gen_device = generator.device if generator is not None else x.device
    # torch.distributions.Beta cannot take a generator: seed numpy's Beta from the torch generator instead.
    seed = int(torch.randint(2 ** 31 - 1, (1,), generator=generator, device=gen_device))
    lam = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, size=b)).float()
    lam = torch.maximum(lam, 1.0 - lam).to(x.device)
    perm = torch.randperm(b, generator=generator, device=gen_device).to(x.device)
    lam_x = lam.to(x.dtype).view(b, 1, 1)
    lam_y = lam.to(y.dtype).view(b, 1)
    x = lam_x * x + (1.0 - lam_x) * x[perm]
    y = lam_y * y + (1.0 - lam_y) * y[perm]
    if known is not None:
        known = known * known[perm]
    return x, y, known, lam


def _band_mask(b: int, size: int, max_width: int, count: int, generator, device) -> torch.Tensor:
    """[B, size] bool: ``count`` bands per sample, width ~ U{0..max_width}, start ~ U{0..size - width}."""
    pos = torch.arange(size, device=device).view(1, 1, size)
    width = (_rand((b, count), generator, device) * (min(max_width, size) + 1)).floor()
    start = (_rand((b, count), generator, device) * (size - width + 1)).floor()
    inside = (pos >= start.unsqueeze(-1)) & (pos < (start + width).unsqueeze(-1))
    return inside.any(dim=1)


def spec_augment(x: torch.Tensor, freqm: int = 0, timem: int = 0, num_freq_masks: int = 1,
                 num_time_masks: int = 1, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """SpecAugment masking: ``num_*_masks`` bands of up to ``freqm`` mel bins / ``timem`` frames set to 0.

    x: [B, T, F] -> [B, T, F] (a new tensor; each sample draws its own bands).
    """
    b, t, f = x.shape
    keep = torch.ones(b, t, f, dtype=torch.bool, device=x.device)
    if freqm > 0 and num_freq_masks > 0:
        keep &= ~_band_mask(b, f, freqm, num_freq_masks, generator, x.device).unsqueeze(1)
    if timem > 0 and num_time_masks > 0:
        keep &= ~_band_mask(b, t, timem, num_time_masks, generator, x.device).unsqueeze(2)
    return x * keep.to(x.dtype)


def time_shift(x: torch.Tensor, max_shift: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Roll each sample along time by a random integer in [-max_shift, max_shift] (content wraps around).

    x: [B, T, F] -> [B, T, F].
    """
    b, t, f = x.shape
    if max_shift <= 0:
        return x
    shift = (_rand((b,), generator, x.device) * (2 * max_shift + 1)).floor().long() - max_shift
    # out[:, i] = x[:, (i - shift) mod T], as torch.roll does, but with one shift per sample.
    src = (torch.arange(t, device=x.device).view(1, t) - shift.view(b, 1)) % t
    return torch.gather(x, 1, src.unsqueeze(-1).expand(b, t, f))


@dataclass
class AugmentConfig:
    """Augmentation settings of fine-tuning (0 disables each)."""

    mixup: float = 0.0  # Beta(alpha, alpha) parameter
    mixup_prob: float = 1.0  # share of batches that are mixed
    freqm: int = 0  # max mel bins per frequency mask
    timem: int = 0  # max frames per time mask
    num_freq_masks: int = 1
    num_time_masks: int = 1
    time_shift: int = 0  # max frames of random roll


def augment_batch(cfg: AugmentConfig, x: torch.Tensor, y: torch.Tensor, known: Optional[torch.Tensor],
                  generator: Optional[torch.Generator] = None):
    """Apply time shift, mixup and SpecAugment (in that order) to one training batch.

    Masking comes after mixup so the masked bands are blank in the mixture too, as in SpecAugment.
    Returns (x [B, T, F], y [B, C], known [B, C] or None).
    """
    if cfg.time_shift > 0:
        x = time_shift(x, cfg.time_shift, generator)
    if cfg.mixup > 0 and cfg.mixup_prob > 0:
        if float(_rand((1,), generator, x.device)) < cfg.mixup_prob:
            x, y, known, _ = mixup(x, y, known, cfg.mixup, generator)
    if cfg.freqm > 0 or cfg.timem > 0:
        x = spec_augment(x, cfg.freqm, cfg.timem, cfg.num_freq_masks, cfg.num_time_masks, generator)
    return x, y, known
