"""Speech recogniser on the MaskSpec encoder: per-column upsampling projection (square patches) or the frame
patches' own tokens + linear CTC head.

Output frame rate. A patch column covers ``patch_size`` frames (16 x 10 ms = 160 ms), slower than the units of
read speech (LibriSpeech: about 15 characters or 3-7 BPE-300 units per second, and CTC needs an extra frame
between repeated units). Each column's tokens (all ``F_p`` frequency patches, concatenated, so the frequency
detail is not averaged away) are projected by one linear layer to ``upsample`` vectors of the model width; each
becomes one output step of ``patch_size / upsample`` frames (upsample 4: 40 ms, ESPnet's usual CTC rate). This
keeps the pre-trained encoder and its 16 x 16 patch grid unchanged, so any pre-trained or imported checkpoint
loads; a smaller patch stride would change what the encoder was trained on.

Frame patches (``patch_freq`` = the mel bins, e.g. 64 x 4 or 128 x 2: one token per column) with ``upsample`` 1
need no projection: each token is an output step, at the patch stride (4 frames: 40 ms). Any other grid keeps the
column projection. ``upsample`` 0 = `auto_upsample`: about 40 ms steps whatever the patch width.
"""
from __future__ import annotations

import torch
from torch import nn

from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import ModelConfig


def auto_upsample(cfg: ModelConfig) -> int:
    """Output steps per patch column for ``--ctc_upsample 0``: patch_time // 4 (at least 1), so 4 for 16 x 16
    patches and 1 for frame patches 2-7 frames wide (40 ms steps with 10 ms frames)."""
    return max(1, cfg.patch_shape[1] // 4)


def resolve_upsample(cfg: ModelConfig, upsample: int) -> int:
    """``upsample``, or `auto_upsample` for 0; ValueError when negative."""
    if upsample < 0:
        raise ValueError(f"CTCModel: upsample must be at least 1 (or 0: automatic), got {upsample}")
    return upsample or auto_upsample(cfg)


class CTCModel(AudioClassifier):
    """[B, T, F] normalised log-mel -> [B, T_out, V] CTC logits (index 0 = blank), T_out = (T // p_t) * upsample.

    Reuses AudioClassifier's encoder loading, freezing and layer ids (upsample_proj, like the head, is in the top
    layer); ``fc_norm`` normalises each output step and ``head`` maps it to the V units.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, upsample: int = 4):
        upsample = resolve_upsample(cfg, upsample)
        super().__init__(cfg, vocab_size)
        self.upsample = upsample
        f_p = cfg.grid[0]
        # frame patches at one step per column: the tokens are the output steps
        self.direct = f_p == 1 and upsample == 1
        if not self.direct:
            self.upsample_proj = nn.Linear(f_p * cfg.embed_dim, upsample * cfg.embed_dim)
            nn.init.xavier_uniform_(self.upsample_proj.weight)
            nn.init.zeros_(self.upsample_proj.bias)
        # The classifier's near-zero head init suits a softmax over classes; CTC must first learn the blank, which a
        # standard init reaches faster.
        nn.init.xavier_uniform_(self.head.weight)

    def output_lengths(self, num_frames: torch.Tensor) -> torch.Tensor:
        """Valid output steps [B] of inputs with ``num_frames`` [B] valid frames."""
        return torch.div(num_frames, self.cfg.patch_shape[1], rounding_mode="floor") * self.upsample

    def forward(self, x: torch.Tensor, num_drop: int = 0, generator=None, num_frames=None) -> torch.Tensor:
        """[B, T, F] -> logits [B, (T // p_t) * upsample, V]; ``num_frames`` [B]: valid frames of a zero-padded
        batch, whose padded columns are then masked out of the encoder's attention."""
        tokens, _, _ = self.encoder(x, num_frames=num_frames)
        if self.direct:
            return self.head(self.fc_norm(tokens[:, 1:]))
        f_p, t_p = self.encoder.grid(x.shape[1])
        b, d = x.shape[0], tokens.shape[-1]
        columns = tokens[:, 1:].reshape(b, f_p, t_p, d).permute(0, 2, 1, 3).reshape(b, t_p, f_p * d)
        steps = self.upsample_proj(columns).reshape(b, t_p * self.upsample, d)
        return self.head(self.fc_norm(steps))
