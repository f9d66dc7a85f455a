"""Parameter counts and the one-paragraph model summary that training logs print."""
from __future__ import annotations

import torch
from torch import nn

from maskspec.models.configs import ModelConfig
from maskspec.models.maskspec import MaskSpecModel


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of a torch module (shared tensors counted once)."""
    params = {id(p): p for p in module.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in params.values())


def describe(cfg: ModelConfig) -> str:
    """Human-readable summary with parameter counts of encoder, decoder and the whole pre-training model."""
    # Meta tensors: counts without allocating or initialising ~100M parameters.
    with torch.device("meta"):
        model = MaskSpecModel(cfg)
    enc = count_parameters(model.encoder)
    total = count_parameters(model)
    f_p, t_p = cfg.grid
    return (f"MaskSpec ViT encoder {cfg.embed_dim}d x {cfg.depth} layers x {cfg.num_heads} heads, "
            f"patch {_patch(cfg)}, grid {f_p}x{t_p} ({f_p * t_p} patches) for {cfg.num_mel_bins} mel x "
            f"{cfg.num_frames} frames\n"
            f"decoder {cfg.decoder_embed_dim}d x {cfg.decoder_depth} layers x {cfg.decoder_num_heads} heads, "
            f"mask ratio {cfg.mask_ratio}, norm_pix_loss {cfg.norm_pix_loss}, pos_embed {cfg.pos_embed}\n"
            f"parameters: encoder {enc / 1e6:.2f}M, decoder {(total - enc) / 1e6:.2f}M, total {total / 1e6:.2f}M")


def _patch(cfg) -> str:
    """"16" for a square 16 x 16 patch, "64x4 (mel x frames)" for any other shape."""
    pf, pt = cfg.patch_shape
    return str(pf) if pf == pt else f"{pf}x{pt} (mel x frames)"
