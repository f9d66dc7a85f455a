"""MaskSpec ViT encoder: patch embedding + fixed 2-D positions + cls token + pre-norm blocks + LayerNorm.

The same module serves pre-training (only visible patches are encoded) and fine-tuning/inference (all
patches, or all but `num_drop` random ones: patch-out). The cls token carries no position.

Padding. A batch of clips of different lengths is zero-padded to the longest; given each clip's valid frame count
(`num_frames` [B]), the patch columns that are not wholly inside the clip are kept out of attention (a key-padding
mask), so a clip's tokens are the same whatever it is batched with. Without `num_frames` nothing is masked.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from maskspec.models.block_masking import mask_scores
from maskspec.models.configs import ModelConfig, check_mask_ratio
from maskspec.models.masking import random_keep, random_masking
from maskspec.models.patch import PatchEmbed, patch_grid
from maskspec.models.pos_embed import make_pos_embed
from maskspec.models.transformer import LAYER_NORM_EPS, Block, init_weights


class MaskSpecEncoder(nn.Module):
    """ViT encoder over a [B, T, F] normalised log-mel spectrogram (F must equal cfg.num_mel_bins)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg.patch_shape, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = make_pos_embed(d, cfg.grid, cfg.pos_embed)
        # Stochastic depth grows linearly with depth, 0 for the first block.
        rates = [cfg.drop_path * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(
            Block(d, cfg.num_heads, cfg.mlp_ratio, drop_path=r, qkv_bias=cfg.qkv_bias, post_norm=cfg.post_norm)
            for r in rates)
        # EAT's (data2vec 2.0's) LayerNorm over the input tokens, cls included (its context_encoder.norm)
        self.embed_norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS) if cfg.embed_norm else None
        self.norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS) if cfg.final_norm else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """MAE init: the patch kernel as a flattened linear layer, cls ~ N(0, 0.02), the rest by init_weights."""
        self.apply(init_weights)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.proj.bias)
        nn.init.normal_(self.cls_token, std=0.02)

    def grid(self, num_frames: int) -> tuple[int, int]:
        """Patch grid (F_p, T_p) for an input of `num_frames` frames."""
        return patch_grid(num_frames, self.cfg.num_mel_bins, self.cfg.patch_shape)

    def valid_tokens(self, num_frames: Optional[torch.Tensor], total_frames: int,
                     device: torch.device) -> Optional[torch.Tensor]:
        """[B, L] bool, True for the patches of whole columns inside each clip's ``num_frames`` valid frames (patch
        order f * T_p + t; at least the first column); None when ``num_frames`` is None or no patch is padding."""
        if num_frames is None:
            return None
        f_p, t_p = self.grid(total_frames)
        # a clip shorter than one column keeps its first (partly padded) column: something must be attended to
        cols = torch.div(torch.as_tensor(num_frames, device=device), self.cfg.patch_shape[1],
                         rounding_mode="floor").clamp(min=1, max=t_p)
        if bool((cols >= t_p).all()):
            return None
        valid = torch.arange(t_p, device=device)[None, :] < cols[:, None]  # [B, T_p]
        return valid.repeat(1, f_p)  # row-major (f, t)

    def embed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> [B, L, D] patch embeddings plus positions."""
        if x.dim() != 3 or x.shape[2] != self.cfg.num_mel_bins:
            raise ValueError(f"encoder expects [B, T, {self.cfg.num_mel_bins}] (frames, mel bins), "
                             f"got shape {tuple(x.shape)}")
        tokens = self.patch_embed(x)
        return tokens + self.pos_embed(self.grid(x.shape[1]), tokens)

    def mask(self, tokens: torch.Tensor, mask_ratio: float, grid: tuple[int, int],
             generator: Optional[torch.Generator] = None):
        """random_masking of [N, L, D] tokens with the config's mask_type (block sizes mask_block_freq/time; time
        spans of mask_span columns): the one masking entry point of every pre-training objective."""
        noise = None
        if self.cfg.mask_type != "random":
            block = ((grid[0], self.cfg.mask_span) if self.cfg.mask_type == "time_span"
                     else (self.cfg.mask_block_freq, self.cfg.mask_block_time))
            noise = mask_scores(tokens.shape[0], grid, self.cfg.mask_type, block, generator, tokens.device)
        return random_masking(tokens, mask_ratio, generator, noise)

    def forward(self, x: torch.Tensor, mask_ratio: float = 0.0, num_drop: int = 0,
                generator: Optional[torch.Generator] = None, num_masks: int = 1,
                num_frames: Optional[torch.Tensor] = None):
        """Encode a spectrogram.

        Args:
            x: [B, T, F]; frames beyond a multiple of patch_size are cropped.
            mask_ratio: > 0 encodes only a (1 - mask_ratio) share of patches (pre-training), chosen by the
                config's mask_type.
            num_drop: > 0 drops that many random patches per sample (patch-out); exclusive with mask_ratio.
            generator: optional torch.Generator for the random subsets.
            num_masks: K independently masked views of each clip (with mask_ratio > 0); view k of clip b is
                row k * B + b of the outputs, and the patch embedding is computed once for all K.
            num_frames: optional [B] valid frames of each clip of a zero-padded batch: the padded patch columns
                are masked out of attention (`encode` also returns which output tokens are real).
        Returns:
            tokens [K*B, 1 + L_keep, D] (cls first, after the final LayerNorm), mask [K*B, L] (1 = masked) and
            ids_restore [K*B, L] when mask_ratio > 0, else tokens [B, 1 + L - num_drop, D], None and None.
        """
        tokens, mask, ids_restore, _ = self.encode(x, mask_ratio, num_drop, generator, num_masks, num_frames)
        return tokens, mask, ids_restore

    def encode(self, x: torch.Tensor, mask_ratio: float = 0.0, num_drop: int = 0,
               generator: Optional[torch.Generator] = None, num_masks: int = 1,
               num_frames: Optional[torch.Tensor] = None):
        """`forward`, plus ``valid`` [K*B, 1 + L'] bool (True = a real token, cls included; None when nothing
        is padding) for the output tokens."""
        check_mask_ratio(mask_ratio, "encoder: mask_ratio")  # 0: no masking; a negative ratio is no such thing
        if mask_ratio > 0 and num_drop > 0:
            raise ValueError("encoder: use either mask_ratio (pre-training) or num_drop (patch-out), not both")
        if num_masks < 1 or (num_masks > 1 and not mask_ratio > 0):
            raise ValueError(f"encoder: num_masks {num_masks} needs to be 1, or > 1 with mask_ratio > 0")
        tokens = self.embed_patches(x)
        valid = self.valid_tokens(num_frames, x.shape[1], tokens.device)
        if valid is not None:
            # the mask travels as one more channel, so masking and patch-out select it with the tokens
            tokens = torch.cat([tokens, valid.unsqueeze(-1).to(tokens.dtype)], dim=-1)
        mask = ids_restore = None
        if mask_ratio > 0:
            if num_masks > 1:
                tokens = tokens.repeat(num_masks, 1, 1)
            tokens, mask, ids_restore = self.mask(tokens, mask_ratio, self.grid(x.shape[1]), generator)
        elif num_drop > 0:
            tokens = random_keep(tokens, num_drop, generator)
        if valid is not None:
            tokens, valid = tokens[..., :-1], tokens[..., -1] > 0.5
            valid = torch.cat([valid.new_ones(valid.shape[0], 1), valid], dim=1)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype), tokens], dim=1)
        if self.embed_norm is not None:
            tokens = self.embed_norm(tokens)
        for block in self.blocks:
            tokens = block(tokens, valid)
        return self.norm(tokens), mask, ids_restore, valid
