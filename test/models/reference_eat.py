"""Reference networks of EAT's checkpoints, written for the tests from EAT's published architecture (github
cwx-worst-one/EAT: data2vec 2.0's multi-modal model with its image modality on a one-channel spectrogram), with
its parameter names and forward computation, in its two layouts:

* fairseq: ``Data2VecMulti`` (pre-training: student, EMA teacher saved under ``_ema``, CNN decoder) and
  ``MaeImageClassification`` (the fine-tuned tagger: the student under ``model``, ``fc_norm``, ``head``).
* Hugging Face: ``EATModel`` wrapping ``EAT`` as ``model`` (``local_encoder``, ``extra_tokens``,
  ``fixed_positional_encoder``, ``pre_norm``, ``blocks``, and ``fc_norm`` / ``head`` for the tagger).

Input ``[B, 1, frames, mel]``; tokens time-major. Only the computation of a loaded model at inference is here
(no dropout, no masking). fairseq and Hugging Face are not test dependencies.
"""
import numpy as np
import torch
from torch import nn

from reference_vits import Mlp  # the same fc1 / GELU / fc2 as the ViTs of MAE and Audio-MAE

EPS = 1e-6  # norm_eps of EAT's configs (data2vec 2.0's make_layer_norm)


class AltAttention(nn.Module):
    def __init__(self, dim, num_heads, qkv_bias=True):
        super().__init__()
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1, dtype=torch.float32).to(q.dtype)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class AltBlock(nn.Module):
    """data2vec 2.0's block with layer_norm_first false (EAT): LayerNorms after the residual sums."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=EPS)
        self.attn = AltAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(x)
        r = x = self.norm1(x)
        x = self.mlp(x)
        return self.norm2(r + x)


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)

    def forward(self, x):  # [B, 1, T, F] -> [B, T_p * F_p, D], time-major
        return self.proj(x).flatten(2).transpose(1, 2)


def eat_sincos(dim, grid_h, grid_w):
    """get_2d_sincos_pos_embed_flexible(dim, (grid_h, grid_w), cls_token=False) as EAT computes it (numpy
    float32): rows over (h = time, w = mel) row-major; meshgrid puts w first, so the first half of the channels
    codes the mel index, the second half the time index. [grid_h * grid_w, dim] float32."""
    grid = np.stack(np.meshgrid(np.arange(grid_w, dtype=np.float32), np.arange(grid_h, dtype=np.float32)), axis=0)
    grid = grid.reshape(2, 1, grid_h, grid_w)

    def one_d(d, pos):
        omega = np.arange(d // 2, dtype=np.float32)
        omega /= d / 2.0
        omega = 1.0 / 10000 ** omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    return torch.from_numpy(np.concatenate([one_d(dim // 2, grid[0]), one_d(dim // 2, grid[1])], axis=1)).float()


class FixedPositionalEncoder(nn.Module):
    def __init__(self, positions):
        super().__init__()
        self.positions = positions


class BlockEncoder(nn.Module):
    """data2vec 2.0's context encoder with prenet_depth 0: only its input LayerNorm (layer_norm_first false)."""

    def __init__(self, dim):
        super().__init__()
        self.blocks = nn.ModuleList()
        self.norm = nn.LayerNorm(dim, eps=EPS)


class Decoder2d(nn.Module):
    """data2vec 2.0's CNN decoder: per layer a grouped conv over the (T_p, F_p) grid (``blocks.<i>.0``, same
    padding), fairseq's LayerNorm without weights over the channels (eps 1e-5, torch's default), GELU, and the
    residual sum where the widths agree; then ``proj`` per patch."""

    def __init__(self, dim, dec_dim, layers, kernel=3, groups=4):
        super().__init__()
        self.blocks = nn.Sequential(*[nn.Sequential(
            nn.Conv2d(dim if i == 0 else dec_dim, dec_dim, kernel, padding=kernel // 2, groups=groups),
            nn.LayerNorm(dec_dim, elementwise_affine=False), nn.GELU()) for i in range(layers)])
        self.proj = nn.Linear(dec_dim, dim)

    def forward(self, x, h, w):
        """x [B, L, C] patch tokens in time-major order (grid h = T_p, w = F_p) -> [B, L, dim]."""
        b, length, c = x.shape
        x = x.transpose(1, 2).reshape(b, c, h, w)
        residual = x
        for layer in self.blocks:
            y = layer[0](x).permute(0, 2, 3, 1)
            x = layer[2](nn.functional.layer_norm(y, y.shape[-1:], eps=1e-5).permute(0, 3, 1, 2))
            if residual.shape[1] == x.shape[1]:
                x = x + residual
            residual = x
        return self.proj(x.reshape(b, -1, length).transpose(1, 2))


class ImageEncoder(nn.Module):
    def __init__(self, frames, mel, patch, dim, decoder=True, decoder_dim=None):
        super().__init__()
        t_p, f_p = frames // patch, mel // patch
        self.local_encoder = PatchEmbed(patch, dim)
        self.fixed_positional_encoder = FixedPositionalEncoder(
            nn.Parameter(eat_sincos(dim, t_p, f_p)[None], requires_grad=False))
        self.context_encoder = BlockEncoder(dim)
        self.extra_tokens = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder = Decoder2d(dim, decoder_dim or dim, 2) if decoder else None

    def forward(self, x):
        """contextualized_features without masking: patches + positions, cls prepended, the input LayerNorm."""
        x = self.local_encoder(x)
        x = x + self.fixed_positional_encoder.positions
        x = torch.cat([self.extra_tokens.expand(x.shape[0], -1, -1), x], dim=1)
        return self.context_encoder.norm(x)


class Data2VecMulti(nn.Module):
    """EAT's pre-training model (student); ``state_dict`` adds the EMA teacher's tensors under ``_ema`` as
    fairseq's EMAModule does (``fp32_params``: a dict)."""

    def __init__(self, frames, mel, patch, dim, depth, heads, decoder=True, decoder_dim=None):
        super().__init__()
        self.modality_encoders = nn.ModuleDict({"IMAGE": ImageEncoder(frames, mel, patch, dim, decoder, decoder_dim)})
        self.blocks = nn.ModuleList(AltBlock(dim, heads) for _ in range(depth))
        self.with_ema = decoder

    def extract_features(self, x):
        """[B, 1, T, F] -> tokens [B, 1 + L, D] (cls first, time-major patches; no final norm)."""
        x = self.modality_encoders["IMAGE"](x)
        for blk in self.blocks:
            x = blk(x)
        return x

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        if self.with_ema:  # the teacher: a copy of the student without its decoder
            state["_ema"] = {k: v.clone() + 0.01 for k, v in state.items() if ".decoder." not in k}
        return state


class MaeImageClassification(nn.Module):
    """EAT's fine-tuned tagger: prediction_mode CLS_TOKEN (default) or MEAN_POOLING, then fc_norm and head."""

    def __init__(self, frames, mel, patch, dim, depth, heads, num_classes, mean_pooling=False):
        super().__init__()
        self.model = Data2VecMulti(frames, mel, patch, dim, depth, heads, decoder=False)
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self.mean_pooling = mean_pooling

    def forward_features(self, x):
        t = self.model.extract_features(x)
        return self.fc_norm(t[:, 1:].mean(dim=1) if self.mean_pooling else t[:, 0])

    def forward(self, x):
        return self.head(self.forward_features(x))


class EAT(nn.Module):
    """The Hugging Face port's network (``EATModel.model``): positions for max_length time columns, of which
    the first ones are used; fc_norm built with PyTorch's default eps."""

    def __init__(self, mel, patch, dim, depth, heads, max_length, num_classes=None):
        super().__init__()
        self.local_encoder = PatchEmbed(patch, dim)
        self.extra_tokens = nn.Parameter(torch.zeros(1, 1, dim))
        self.fixed_positional_encoder = FixedPositionalEncoder(
            nn.Parameter(eat_sincos(dim, max_length, mel // patch)[None], requires_grad=False))
        self.blocks = nn.ModuleList(AltBlock(dim, heads) for _ in range(depth))
        self.pre_norm = nn.LayerNorm(dim, eps=EPS)
        if num_classes:
            self.fc_norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, num_classes)

    def extract_features(self, x):
        x = self.local_encoder(x)
        x = x + self.fixed_positional_encoder.positions[:, :x.shape[1]]
        x = self.pre_norm(torch.cat([self.extra_tokens.expand(x.shape[0], -1, -1), x], dim=1))
        for blk in self.blocks:
            x = blk(x)
        return x

    def forward_features(self, x):
        return self.fc_norm(self.extract_features(x)[:, 0])

    def forward(self, x):
        return self.head(self.forward_features(x))


class EATModel(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.model = EAT(**kw)


def randomize_(module, seed):
    """Every trainable parameter ~ N(0, 0.2) (LayerNorm gains around 1); the fixed position tables stay."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            noise = torch.randn(p.shape, generator=g) * 0.2
            p.copy_(noise + 1.0 if ("norm" in name and name.endswith("weight")) else noise)
    return module


def time_major_to_ours(tokens, f_p, t_p):
    """[B, 1 + T_p*F_p, D] time-major tokens -> frequency-major (ours), cls kept first."""
    b, _, d = tokens.shape
    patches = tokens[:, 1:].reshape(b, t_p, f_p, d).transpose(1, 2).reshape(b, f_p * t_p, d)
    return torch.cat([tokens[:, :1], patches], dim=1)


def hf_config(dim, depth, heads, patch, mel, max_length, frames, num_classes=None):
    """config.json of the Hugging Face port (configuration_eat.py's fields)."""
    return dict(architectures=["EATModel"], model_type="eat", embed_dim=dim, depth=depth, num_heads=heads,
                patch_size=patch, stride=patch, in_chans=1, mel_bins=mel, max_length=max_length,
                num_classes=num_classes or 527, model_variant="finetune" if num_classes else "pretrain",
                mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, activation_dropout=0.0,
                post_mlp_drop=0.0, start_drop_path_rate=0.0, end_drop_path_rate=0.0, layer_norm_first=False,
                norm_eps=1e-6, norm_affine=True, fixed_positions=True, img_size=[frames, mel],
                torch_dtype="float32")

