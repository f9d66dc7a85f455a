"""Audio classifier for fine-tuning: MaskSpec encoder, mean pooling over patch tokens, LayerNorm, Linear head.

The encoder keeps its own final LayerNorm (pre-trained weights); `fc_norm` then normalises the pooled vector.
Imported checkpoints may instead pool without the encoder's final norm (`cfg.final_norm` false, timm's global
pool) or read the cls token with no fc_norm (`cfg.pool == "cls"`), or with it (`cfg.cls_fc_norm`, EAT).
"""
from __future__ import annotations

import logging
from typing import Mapping, Optional

import torch
from torch import nn

from maskspec.models.configs import ModelConfig
from maskspec.models.encoder import MaskSpecEncoder

logger = logging.getLogger(__name__)

HEAD_INIT_STD = 2e-5  # near-zero logits at the start of fine-tuning, as MAE


class AudioClassifier(nn.Module):
    """[B, T, F] normalised log-mel -> [B, num_classes] logits."""

    def __init__(self, cfg: ModelConfig, num_classes: int):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"AudioClassifier: num_classes must be positive, got {num_classes}")
        self.cfg = cfg
        self.num_classes = num_classes
        self.encoder = MaskSpecEncoder(cfg)
        has_fc_norm = cfg.pool == "mean" or cfg.cls_fc_norm
        self.fc_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.fc_norm_eps) if has_fc_norm else nn.Identity()
        self.head = nn.Linear(cfg.embed_dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=HEAD_INIT_STD, a=-2 * HEAD_INIT_STD, b=2 * HEAD_INIT_STD)
        nn.init.zeros_(self.head.bias)

    def embed(self, x: torch.Tensor, num_drop: int = 0, generator: Optional[torch.Generator] = None,
              num_frames: Optional[torch.Tensor] = None) -> torch.Tensor:
        """[B, T, F] -> [B, D] clip embedding: patch tokens (not cls) averaged, then fc_norm (pool "cls": the
        cls token). ``num_frames`` [B]: valid frames of zero-padded clips; padding is masked out of attention
        and of the average."""
        tokens, _, _, valid = self.encoder.encode(x, num_drop=num_drop, generator=generator, num_frames=num_frames)
        if self.cfg.pool == "cls":
            return self.fc_norm(tokens[:, 0])
        if valid is None:
            return self.fc_norm(tokens[:, 1:].mean(dim=1))
        w = valid[:, 1:].unsqueeze(-1).to(tokens.dtype)
        return self.fc_norm((tokens[:, 1:] * w).sum(dim=1) / w.sum(dim=1))

    def forward(self, x: torch.Tensor, num_drop: int = 0, generator: Optional[torch.Generator] = None,
                num_frames: Optional[torch.Tensor] = None) -> torch.Tensor:
        """[B, T, F] -> logits [B, C]; num_drop > 0 drops that many random patches per sample (patch-out);
        ``num_frames`` [B]: valid frames of zero-padded clips (see `embed`)."""
        return self.head(self.embed(x, num_drop, generator, num_frames))

    def frame_embed(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> [B, T_p, D]: one vector per patch column (patch_time frames), tokens averaged over frequency
        (encoder output after its final LayerNorm, if any; no fc_norm)."""
        tokens, _, _ = self.encoder(x)
        f_p, t_p = self.encoder.grid(x.shape[1])
        return tokens[:, 1:].reshape(x.shape[0], f_p, t_p, -1).mean(dim=1)

    def load_encoder(self, state_dict: Mapping[str, torch.Tensor], ignore_shape_mismatch: bool = False):
        """Load encoder weights from a MaskSpecModel/AudioClassifier state dict (`encoder.*` keys; other keys
        such as the decoder are skipped) or from a bare encoder state dict. A DDP `module.` prefix is removed.

        Returns (missing, unexpected): encoder keys left at their initial value (including any skipped for a
        shape mismatch) and given keys not used. A shape mismatch raises ValueError naming the key unless
        ignore_shape_mismatch. No matching key at all raises ValueError.
        """
        sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state_dict.items()}
        prefixed = any(k.startswith("encoder.") for k in sd)
        own = self.encoder.state_dict()
        picked, unexpected, skipped = {}, [], []
        for key, value in sd.items():
            if prefixed and not key.startswith("encoder."):
                unexpected.append(key)
                continue
            name = key[len("encoder."):] if prefixed else key
            if name == "pos_embed.table" and name in own and own[name].shape != value.shape:
                value = self.encoder.pos_embed.adapt(value)  # learned positions of another num_frames
            if name not in own:
                unexpected.append(key)
            elif tuple(own[name].shape) != tuple(value.shape):
                if not ignore_shape_mismatch:
                    raise ValueError(f"load_encoder: shape mismatch for {key}: checkpoint {tuple(value.shape)}, "
                                     f"model {tuple(own[name].shape)}")
                logger.warning("load_encoder: skipping %s (checkpoint %s, model %s)", key, tuple(value.shape),
                               tuple(own[name].shape))
                skipped.append(name)
            else:
                picked[name] = value
        if not picked:
            raise ValueError(f"load_encoder: no encoder weights found among {len(sd)} keys "
                             f"(e.g. {sorted(sd)[:3]})")
        self.encoder.load_state_dict(picked, strict=False)
        missing = sorted(name for name in own if name not in picked)
        if unexpected:
            logger.info("load_encoder: %d keys not used (decoder or head)", len(unexpected))
        return missing, sorted(unexpected)

    def freeze_encoder(self) -> None:
        """Train only fc_norm and head (linear evaluation): encoder parameters get requires_grad False."""
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    @property
    def num_layers(self) -> int:
        """Highest layer id (= depth + 1); layer ids run 0..num_layers.

        For layer-wise lr decay the usual scale is decay ** (num_layers - layer_id(name)).
        """
        return self.cfg.depth + 1

    def layer_id(self, param_name: str) -> int:
        """Layer of a parameter name (as in named_parameters(), with or without `encoder.`/`module.`):
        patch embedding, cls token and embed_norm 0, block i -> i + 1, final norms and head -> depth + 1."""
        name = param_name[len("module."):] if param_name.startswith("module.") else param_name
        name = name[len("encoder."):] if name.startswith("encoder.") else name
        if name.startswith(("patch_embed.", "cls_token", "pos_embed", "embed_norm.")):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return self.num_layers
