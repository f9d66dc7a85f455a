"""Model configuration: one dataclass and the named sizes (parameter counts: ``maskspec.models.summary``).

`model_config("base")`, `model_config("vit_small_patch16", drop_path=0.1)` and
`model_config({"size": "tiny", "num_frames": 500})` all give a validated `ModelConfig`.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Mapping, Union

from maskspec.utils.fields import check_field_types, check_fields

POS_EMBED_MODES = ("extend", "interpolate", "learned")
POOL_MODES = ("mean", "cls")
# Pre-training masks (maskspec.models.block_masking): uniform, hidden rectangles, visible rectangles, hidden
# spans of whole patch columns (time spans, as wav2vec 2.0 / HuBERT / data2vec mask speech).
MASK_TYPES = ("random", "block", "inverse_block", "time_span")
# Pre-training objectives: the paper's masked spectrogram prediction, or the bootstrap one (an EMA teacher's
# layer-averaged features as targets, maskspec.models.bootstrap); the decoders of the bootstrap objective.
OBJECTIVES = ("maskspec", "bootstrap")
DECODER_TYPES = ("transformer", "cnn")

# Encoder sizes: (embed_dim, depth, num_heads). Tiny and Small are the standard ViT sizes; the paper's
# code defines only Base. The decoder (512/8/16) is the same for every size.
MODEL_SIZES = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
}

_NAME_RE = re.compile(r"^(?:vit_)?(?P<size>[a-z]+)(?:_patch(?P<patch>\d+))?$")


def check_mask_ratio(ratio: float, what: str = "mask_ratio", pretraining: bool = False) -> float:
    """The one range rule of a mask ratio (the share of patches hidden); returns ``ratio``.

    [0, 1): 1 would hide every patch; 0 hides none (the encoder used without masking). ``pretraining``: the
    reconstruction loss is taken over the hidden patches, so there must be some: (0, 1). ``what`` starts the
    message.
    """
    low_ok = ratio > 0.0 if pretraining else ratio >= 0.0
    if not (low_ok and ratio < 1.0):  # written so that NaN fails too
        raise ValueError(f"{what} must be in {'(0, 1) for pre-training' if pretraining else '[0, 1)'}, got {ratio}")
    return ratio


@dataclass
class ModelConfig:
    """Everything that fixes the shapes of a MaskSpec model (defaults: ViT-Base, 128 mel x 992 frames).

    `num_mel_bins` is the number of feature bins, which must be the mel bins: the patches tile the mel axis, so
    features with Kaldi's extra log-energy column (fbank `use_energy: true`) are refused where an fbank config
    becomes model input (`FbankConfig.check_model_input`: training runs' fbank.yaml, model files).
    `num_frames` is the pre-training length; it sets the grid that `pos_embed == "interpolate"` stretches
    from. With `"extend"` (default) positions are computed for whatever grid the input has.
    """

    patch_size: int = 16
    num_mel_bins: int = 128
    num_frames: int = 992
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mask_ratio: float = 0.75
    norm_pix_loss: bool = True
    drop_path: float = 0.0
    qkv_bias: bool = True
    pos_embed: str = "extend"
    # Variants of imported checkpoints (maskspec-import); the defaults are MaskSpec's own model. final_norm
    # false: no LayerNorm after the last block (timm's global-pool ViT, whose fc_norm after pooling replaces
    # it); pool "cls": the classifier reads the cls token (no fc_norm) instead of the mean of patch tokens.
    final_norm: bool = True
    pool: str = "mean"
    # EAT (data2vec 2.0 blocks, maskspec-import): post_norm puts each block's LayerNorms after its residual sums;
    # embed_norm is a LayerNorm over all tokens (cls included) after the positions, before the first block;
    # cls_fc_norm keeps fc_norm after the cls token (pool "cls"); fc_norm_eps is fc_norm's eps.
    post_norm: bool = False
    embed_norm: bool = False
    cls_fc_norm: bool = False
    fc_norm_eps: float = 1e-6
    # Pre-training only, off by default (the paper's method): masked views per loaded clip (one data read and
    # one target computation shared by K views, loss averaged over them), the mask shape, and its rectangle
    # size in patches for the block types.
    num_masks: int = 1
    mask_type: str = "random"
    mask_block_freq: int = 2
    mask_block_time: int = 2
    # Patch shape (frequency x time): 0 = patch_size, so the default is square. Frame patches (e.g. 128x2 or
    # 64x4: patch_freq = the mel bins) give one token per patch_time frames, the shape SSAST found best for
    # speech. `time_span` masks hide spans of mask_span patch columns (a mask_ratio share of the patches).
    patch_freq: int = 0
    patch_time: int = 0
    mask_span: int = 5
    # Pre-training objective (maskspec.models.bootstrap; the defaults: the paper's method). The bootstrap
    # objective's EMA teacher decay goes linearly from ema_decay to ema_end_decay over ema_anneal_steps optimiser
    # steps; its targets average the teacher's top target_top_k block outputs (0: every block); its decoder is
    # the transformer above or a 2-D CNN over the patch grid (decoder_embed_dim channels, decoder_depth layers,
    # decoder_kernel, decoder_groups); utterance_loss_weight weighs the student's cls against the mean target.
    objective: str = "maskspec"
    decoder_type: str = "transformer"
    decoder_kernel: int = 3
    decoder_groups: int = 16
    ema_decay: float = 0.9998
    ema_end_decay: float = 0.99999
    ema_anneal_steps: int = 100000
    target_top_k: int = 0
    utterance_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        # "mlp_ratio: 4" in YAML becomes 4.0: stored values are plain Python numbers of the annotated type
        check_field_types(self, "model config:", coerce=True)
        for name in ("patch_size", "num_mel_bins", "num_frames", "embed_dim", "depth", "num_heads",
                     "decoder_embed_dim", "decoder_depth", "decoder_num_heads", "num_masks", "mask_block_freq",
                     "mask_block_time", "mask_span"):
            if getattr(self, name) <= 0:
                raise ValueError(f"model config: {name} must be positive, got {getattr(self, name)}")
        for name in ("patch_freq", "patch_time"):
            if getattr(self, name) < 0:
                raise ValueError(f"model config: {name} must be positive (or 0: patch_size), got {getattr(self, name)}")
        pf, pt = self.patch_shape
        if self.num_mel_bins < pf or self.num_frames < pt:
            raise ValueError(f"model config: num_mel_bins ({self.num_mel_bins}) and num_frames "
                             f"({self.num_frames}) must be at least patch_size (a patch: {pf} bins x {pt} frames)")
        for dim, heads in (("embed_dim", "num_heads"), ("decoder_embed_dim", "decoder_num_heads")):
            if getattr(self, dim) % getattr(self, heads):
                raise ValueError(f"model config: {dim} ({getattr(self, dim)}) must be divisible by "
                                 f"{heads} ({getattr(self, heads)})")
            # 2-D sin-cos positions: half the channels per axis, each half split into sin and cos.
            if getattr(self, dim) % 4:
                raise ValueError(f"model config: {dim} ({getattr(self, dim)}) must be divisible by 4")
        check_mask_ratio(self.mask_ratio, "model config: mask_ratio")
        if not 0.0 <= self.drop_path < 1.0:
            raise ValueError(f"model config: drop_path must be in [0, 1), got {self.drop_path}")
        if self.mlp_ratio <= 0:
            raise ValueError(f"model config: mlp_ratio must be positive, got {self.mlp_ratio}")
        if self.pos_embed not in POS_EMBED_MODES:
            raise ValueError(f"model config: pos_embed must be one of {POS_EMBED_MODES}, got {self.pos_embed!r}")
        if self.mask_type not in MASK_TYPES:
            raise ValueError(f"model config: mask_type must be one of {MASK_TYPES}, got {self.mask_type!r}")
        if self.pool not in POOL_MODES:
            raise ValueError(f"model config: pool must be one of {POOL_MODES}, got {self.pool!r}")
        if self.cls_fc_norm and self.pool != "cls":
            raise ValueError("model config: cls_fc_norm applies to pool 'cls' (pool 'mean' always has fc_norm)")
        if not self.fc_norm_eps > 0:
            raise ValueError(f"model config: fc_norm_eps must be positive, got {self.fc_norm_eps}")
        self._check_objective()

    def _check_objective(self) -> None:
        """The objective's fields (checked whatever the objective, so a bad value never waits in a file)."""
        if self.objective not in OBJECTIVES:
            raise ValueError(f"model config: objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.decoder_type not in DECODER_TYPES:
            raise ValueError(f"model config: decoder_type must be one of {DECODER_TYPES}, got {self.decoder_type!r}")
        if self.decoder_type == "cnn" and self.objective != "bootstrap":
            raise ValueError("model config: decoder_type 'cnn' is an option of objective 'bootstrap' only")
        for name in ("decoder_kernel", "decoder_groups", "ema_anneal_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"model config: {name} must be positive, got {getattr(self, name)}")
        if self.decoder_kernel % 2 == 0:
            raise ValueError(f"model config: decoder_kernel must be odd (same-size output), got {self.decoder_kernel}")
        if self.decoder_type == "cnn" and self.decoder_embed_dim % self.decoder_groups:
            raise ValueError(f"model config: decoder_embed_dim ({self.decoder_embed_dim}) must be divisible by "
                             f"decoder_groups ({self.decoder_groups})")
        if not 0.0 <= self.ema_decay <= self.ema_end_decay <= 1.0:
            raise ValueError(f"model config: need 0 <= ema_decay <= ema_end_decay <= 1, got {self.ema_decay} and "
                             f"{self.ema_end_decay}")
        if not 0 <= self.target_top_k <= self.depth:
            raise ValueError(f"model config: target_top_k must be in [0, depth = {self.depth}] (0: every block), "
                             f"got {self.target_top_k}")
        if not self.utterance_loss_weight >= 0.0:
            raise ValueError(f"model config: utterance_loss_weight must be >= 0, got {self.utterance_loss_weight}")

    @property
    def patch_shape(self) -> tuple[int, int]:
        """(mel bins, frames) of one patch: (patch_freq, patch_time), either defaulting to patch_size."""
        return self.patch_freq or self.patch_size, self.patch_time or self.patch_size

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (F_p, T_p) of the pre-training input size."""
        pf, pt = self.patch_shape
        return self.num_mel_bins // pf, self.num_frames // pt

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Strict inverse of `to_dict`: an unknown key is a ValueError naming it."""
        _check_keys(d)
        return cls(**d)


def _check_keys(d: Mapping[str, Any]) -> None:
    check_fields(ModelConfig, d, "model config: unknown key")


def _size_overrides(name: str) -> dict:
    m = _NAME_RE.match(name.strip().lower())
    if m is None or m.group("size") not in MODEL_SIZES:
        raise ValueError(f"model config: unknown model name {name!r}; use one of {', '.join(MODEL_SIZES)} "
                         f"or vit_<size>_patch<P>")
    out = dict(MODEL_SIZES[m.group("size")])
    if m.group("patch"):
        out["patch_size"] = int(m.group("patch"))
    return out


def model_config(name_or_dict: Union[str, Mapping[str, Any], ModelConfig, None] = "base",
                 **overrides: Any) -> ModelConfig:
    """Build a `ModelConfig` from a size name, a dict or a config, then apply keyword overrides.

    Names: `tiny|small|base` or `vit_<size>_patch<P>`. A dict may hold `size` (or `name`) plus any config
    fields; explicit fields win over the size. Unknown keys raise ValueError naming the key.
    """
    if isinstance(name_or_dict, ModelConfig):
        values = name_or_dict.to_dict()
    elif name_or_dict is None:
        values = ModelConfig().to_dict()
    elif isinstance(name_or_dict, str):
        values = _size_overrides(name_or_dict)
    elif isinstance(name_or_dict, Mapping):
        d = dict(name_or_dict)
        size = d.pop("size", None)
        name = d.pop("name", None)
        if size is not None and name is not None:
            raise ValueError("model config: give either 'size' or 'name', not both")
        values = _size_overrides(size or name) if (size or name) else {}
        _check_keys(d)
        values.update(d)
    else:
        raise ValueError(f"model config: expected a name, dict or ModelConfig, got {type(name_or_dict).__name__}")
    _check_keys(overrides)
    values.update(overrides)
    return ModelConfig(**values)
