"""MaskSpec pre-training model: encoder on visible patches, light decoder predicting every patch, MSE on masked.

forward(x) = forward_encoder -> forward_decoder -> forward_loss; `reconstruct` turns a prediction back into
spectrograms for plotting.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from maskspec.models.configs import ModelConfig, check_mask_ratio
from maskspec.models.encoder import MaskSpecEncoder
from maskspec.models.patch import patchify, unpatchify
from maskspec.models.pos_embed import make_pos_embed
from maskspec.models.transformer import LAYER_NORM_EPS, Block, init_weights

NORM_PIX_EPS = 1e-6


def patch_targets(x: torch.Tensor, p, norm_pix: bool):
    """Reconstruction targets [B, L, p_f*p_t] of a [B, T, F] input (``p``: the patch shape, an int or a pair),
    plus per-patch (mean, std) [B, L, 1] each.

    With norm_pix each patch is standardised by its own mean and (unbiased) variance + 1e-6, so the model
    predicts local structure rather than loudness; without it mean = 0 and std = 1.
    """
    target = patchify(x, p).float()
    if not norm_pix:
        return target, torch.zeros_like(target[..., :1]), torch.ones_like(target[..., :1])
    mean = target.mean(dim=-1, keepdim=True)
    std = (target.var(dim=-1, keepdim=True) + NORM_PIX_EPS).sqrt()
    return (target - mean) / std, mean, std


class MaskSpecModel(nn.Module):
    """Masked spectrogram prediction on [B, T, F] normalised log-mel input."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = MaskSpecEncoder(cfg)
        dd = cfg.decoder_embed_dim
        self.decoder_embed = nn.Linear(cfg.embed_dim, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.decoder_pos_embed = make_pos_embed(dd, cfg.grid, cfg.pos_embed)
        self.decoder_blocks = nn.ModuleList(
            Block(dd, cfg.decoder_num_heads, cfg.mlp_ratio, qkv_bias=cfg.qkv_bias) for _ in range(cfg.decoder_depth))
        self.decoder_norm = nn.LayerNorm(dd, eps=LAYER_NORM_EPS)
        self.decoder_pred = nn.Linear(dd, cfg.patch_shape[0] * cfg.patch_shape[1])
        for module in (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred):
            module.apply(init_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward_encoder(self, x: torch.Tensor, mask_ratio: float, generator: Optional[torch.Generator] = None,
                        num_masks: int = 1):
        """[B, T, F] -> latent [K*B, 1 + L_keep, D], mask [K*B, L], ids_restore [K*B, L] (K = num_masks views,
        view k of clip b in row k * B + b)."""
        return self.encoder(x, mask_ratio=mask_ratio, generator=generator, num_masks=num_masks)

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """latent [B, 1 + L_keep, D] -> predicted patches [B, L, p*p] in patch order (cls dropped)."""
        y = self.decoder_embed(latent)
        b, n_vis, dd = y.shape
        n = ids_restore.shape[1]
        # Append one mask token per hidden patch, then undo the shuffle so token i is patch i again.
        fill = self.mask_token.to(y.dtype).expand(b, n + 1 - n_vis, -1)
        patches = torch.cat([y[:, 1:], fill], dim=1)
        patches = torch.gather(patches, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dd))
        patches = patches + self.decoder_pos_embed(grid, patches)
        y = torch.cat([y[:, :1], patches], dim=1)
        for block in self.decoder_blocks:
            y = block(y)
        return self.decoder_pred(self.decoder_norm(y))[:, 1:]

    def forward_loss(self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over masked patches of the per-patch MSE; x [B, T, F], pred [K*B, L, p*p], mask [K*B, L] (1 =
        masked; K views of each clip, view k of clip b in row k * B + b, as forward_encoder gives them).

        The targets are computed once and shared by the K views; every view hides the same number of patches,
        so this is also the mean of the K views' losses. Computed in float32 whatever the autocast dtype of pred.
        """
        target, _, _ = patch_targets(x, self.cfg.patch_shape, self.cfg.norm_pix_loss)
        b, n, pp = target.shape
        if pred.shape[0] % b or pred.shape[1:] != target.shape[1:] or mask.shape != pred.shape[:2]:
            raise ValueError(f"forward_loss: pred {tuple(pred.shape)} / mask {tuple(mask.shape)} do not match "
                             f"targets {tuple(target.shape)}")
        views = pred.float().reshape(-1, b, n, pp)  # [K, B, L, p*p], broadcast against the [B, L, p*p] targets
        per_patch = ((views - target) ** 2).mean(dim=-1).reshape(-1, n)
        mask = mask.float()
        return (per_patch * mask).sum() / mask.sum()

    def forward(self, x: torch.Tensor, mask_ratio: Optional[float] = None,
                generator: Optional[torch.Generator] = None, num_masks: Optional[int] = None):
        """x [B, T, F] -> (loss scalar, pred [K*B, L, p*p], mask [K*B, L]); mask_ratio and num_masks (K views of
        each clip) default to the config's."""
        ratio = check_mask_ratio(self.cfg.mask_ratio if mask_ratio is None else mask_ratio, "MaskSpecModel: mask_ratio",
                                 pretraining=True)
        k = self.cfg.num_masks if num_masks is None else num_masks
        latent, mask, ids_restore = self.forward_encoder(x, ratio, generator, k)
        pred = self.forward_decoder(latent, ids_restore, self.encoder.grid(x.shape[1]))
        return self.forward_loss(x, pred, mask), pred, mask

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor):
        """Spectrograms for plotting, each [B, T', F'] (x cropped to whole patches), float32.

        Returns (masked_input, reconstruction): the input with masked patches zeroed, and the input with its
        masked patches replaced by the prediction. With norm_pix_loss predictions are mapped back with each
        patch's true mean/std (as MAE's visualisation does), so only the shape within a patch is predicted.
        """
        p = self.cfg.patch_shape
        _, mean, std = patch_targets(x, p, self.cfg.norm_pix_loss)
        original = patchify(x, p).float()
        predicted = pred.float() * std + mean
        keep = (1.0 - mask.float()).unsqueeze(-1)
        grid = self.encoder.grid(x.shape[1])
        masked_input = unpatchify(original * keep, p, grid)
        reconstruction = unpatchify(original * keep + predicted * (1.0 - keep), p, grid)
        return masked_input, reconstruction
