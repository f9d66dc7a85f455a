"""Analytic training FLOPs of the models: the one formula behind history.json's compute record and the MFU of
benchmarks/pretrain_throughput.py.

Only matmuls are counted (2 FLOPs per multiply-add): the patch embedding, the four projections and two MLP
layers of each block, QK^T and attention x V. Norms, softmax, GELU and the loss are left out (a few per cent
for the small models, less for Base). Training = forward + backward = 3 x forward. torch's FlopCounterMode
agrees with the forward counts exactly (test/models/test_throughput_flops.py).
"""
from __future__ import annotations

from maskspec.models.configs import ModelConfig
from maskspec.models.masking import num_keep
from maskspec.models.patch import patch_grid

TRAIN_FACTOR = 3.0  # backward costs about twice the forward


def block_flops(num_tokens: int, dim: int, mlp_ratio: float) -> float:
    """Forward FLOPs of one pre-norm transformer block on [num_tokens, dim] (one sample)."""
    hidden = int(dim * mlp_ratio)
    # qkv + output projection + two MLP matmuls, plus QK^T and attention x V
    return 2 * num_tokens * (4 * dim * dim + 2 * dim * hidden) + 4 * num_tokens * num_tokens * dim


def _num_patches(cfg: ModelConfig, num_frames: int) -> int:
    f_p, t_p = patch_grid(num_frames, cfg.num_mel_bins, cfg.patch_shape)
    return f_p * t_p


def encoder_flops(cfg: ModelConfig, num_frames: int, num_visible: int) -> float:
    """Forward FLOPs of the encoder blocks on cls + ``num_visible`` patch tokens (patch embedding excluded)."""
    return cfg.depth * block_flops(1 + num_visible, cfg.embed_dim, cfg.mlp_ratio)


def patch_embed_flops(cfg: ModelConfig, num_frames: int) -> float:
    """Forward FLOPs of the patch embedding of one [num_frames, F] input (every patch, visible or not)."""
    return 2 * _num_patches(cfg, num_frames) * _patch_values(cfg) * cfg.embed_dim


def _patch_values(cfg: ModelConfig) -> int:
    pf, pt = cfg.patch_shape
    return pf * pt


def pretrain_flops_per_clip(cfg: ModelConfig, num_frames: int, num_masks: int | None = None,
                            train: bool = True) -> float:
    """FLOPs of one loaded clip in pre-training: the patch embedding once, then for each of the ``num_masks``
    views (default ``cfg.num_masks``) the encoder on 1 + L_keep tokens and the decoder on 1 + L tokens.
    ``train``: forward + backward (3 x forward), else the forward alone."""
    if cfg.objective == "bootstrap":
        return bootstrap_flops_per_clip(cfg, num_frames, num_masks, train)
    k = cfg.num_masks if num_masks is None else num_masks
    n = _num_patches(cfg, num_frames)
    n_enc, n_dec = 1 + num_keep(n, cfg.mask_ratio), 1 + n
    dd, pp = cfg.decoder_embed_dim, _patch_values(cfg)
    per_view = (encoder_flops(cfg, num_frames, n_enc - 1)
                + 2 * n_enc * cfg.embed_dim * dd
                + cfg.decoder_depth * block_flops(n_dec, dd, cfg.mlp_ratio)
                + 2 * n_dec * dd * pp)
    forward = patch_embed_flops(cfg, num_frames) + k * per_view
    return TRAIN_FACTOR * forward if train else forward


def classifier_flops_per_clip(cfg: ModelConfig, num_frames: int, num_classes: int, num_drop: int = 0,
                              train: bool = True) -> float:
    """FLOPs of one clip through AudioClassifier: patch embedding, the encoder on 1 + L - num_drop tokens, the
    linear head. ``train``: forward + backward (3 x forward; an upper bound for a frozen encoder, whose backward
    is skipped)."""
    n = _num_patches(cfg, num_frames)
    forward = (patch_embed_flops(cfg, num_frames) + encoder_flops(cfg, num_frames, n - num_drop)
               + 2 * cfg.embed_dim * num_classes)
    return TRAIN_FACTOR * forward if train else forward


def bootstrap_flops_per_clip(cfg: ModelConfig, num_frames: int, num_masks: int | None = None,
                             train: bool = True) -> float:
    """FLOPs of one loaded clip in bootstrap pre-training (maskspec.models.bootstrap): the teacher's forward pass
    on every patch (once per clip, no backward: the cost K views share), plus the student's patch embedding once
    and, per view, its encoder on 1 + L_keep tokens and the decoder (transformer on 1 + L tokens, or the CNN's
    grouped convolutions over the L grid cells), whose output is D wide. ``train``: the student's part x 3."""
    k = cfg.num_masks if num_masks is None else num_masks
    n = _num_patches(cfg, num_frames)
    n_keep = num_keep(n, cfg.mask_ratio)
    d, dd = cfg.embed_dim, cfg.decoder_embed_dim
    teacher = patch_embed_flops(cfg, num_frames) + encoder_flops(cfg, num_frames, n)
    if cfg.decoder_type == "cnn":
        kernel = cfg.decoder_kernel ** 2 * dd // cfg.decoder_groups  # multiply-adds per output value
        decoder = 2 * n_keep * d * dd + cfg.decoder_depth * 2 * n * dd * kernel + 2 * n * dd * d
    else:
        decoder = (2 * (1 + n_keep) * d * dd + cfg.decoder_depth * block_flops(1 + n, dd, cfg.mlp_ratio)
                   + 2 * (1 + n) * dd * d)
    student = patch_embed_flops(cfg, num_frames) + k * (encoder_flops(cfg, num_frames, n_keep) + decoder)
    return (TRAIN_FACTOR if train else 1.0) * student + teacher
