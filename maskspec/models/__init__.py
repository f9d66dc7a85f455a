"""MaskSpec models: patches, positions, masking, ViT blocks, encoder, pre-training model and classifier.

Every model takes `x: [B, T, F]` (frames, mel bins), already normalised.
"""
from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import MODEL_SIZES, ModelConfig, model_config
from maskspec.models.encoder import MaskSpecEncoder
from maskspec.models.masking import random_keep, random_masking
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.patch import PatchEmbed, patchify, unpatchify
from maskspec.models.pos_embed import interpolate_pos_embed, sincos_2d
from maskspec.models.summary import count_parameters, describe

__all__ = [
    "AudioClassifier", "MODEL_SIZES", "MaskSpecEncoder", "MaskSpecModel", "ModelConfig", "PatchEmbed",
    "count_parameters", "describe", "interpolate_pos_embed", "model_config", "patchify", "random_keep",
    "random_masking", "sincos_2d", "unpatchify",
]
