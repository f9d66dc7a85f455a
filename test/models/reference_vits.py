"""Reference networks of the published checkpoints, written for the tests from the published architecture:
timm's ViT (its parameter names, its attention and block arithmetic) as the MaskSpec authors' models
(``models_vit.py`` / ``models_mae.py``: input ``[B, 1, mel, frames]``) and Audio-MAE's (``models_vit.py`` /
``models_mae.py``: input ``[B, 1, frames, mel]``, time-major tokens) use it. timm itself is not a test dependency.

Only what the forward computation of a loaded checkpoint needs is here (no dropout, no masking at random).
"""
import torch
from torch import nn

EPS = 1e-6  # both sources build their LayerNorms with partial(nn.LayerNorm, eps=1e-6)


class Attention(nn.Module):
    def __init__(self, dim, num_heads, qkv_bias=True):
        super().__init__()
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=EPS)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)

    def forward(self, x):  # [B, 1, H, W] -> [B, H_p * W_p, D], row-major over (H_p, W_p)
        return self.proj(x).flatten(2).transpose(1, 2)


def sincos_table(dim, grid_h, grid_w):
    """MAE's get_2d_sincos_pos_embed(dim, (grid_h, grid_w), cls_token=True): rows over (h, w) row-major, the
    first half of the channels coding w (meshgrid puts w first), the second h; row 0 (cls) zeros. [1+h*w, dim]."""
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1).double() * omega
        return torch.cat([out.sin(), out.cos()], dim=1)
    w_idx = torch.arange(grid_w).repeat(grid_h)
    h_idx = torch.arange(grid_h).repeat_interleave(grid_w)
    table = torch.cat([one_d(dim // 2, w_idx), one_d(dim // 2, h_idx)], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), table]).float()


class ViT(nn.Module):
    """timm VisionTransformer as both sources subclass it. ``global_pool``: timm's ``norm`` is deleted and
    ``fc_norm`` normalises the mean of the patch tokens; else ``norm`` and the cls token. ``cat_then_add``: the
    authors add the positions after prepending the cls token; Audio-MAE adds ``pos_embed[:, 1:]`` to the patches
    and ``pos_embed[:, :1]`` to the cls token (the same sums)."""

    def __init__(self, img_hw, patch, dim, depth, heads, num_classes, global_pool=True, cat_then_add=True):
        super().__init__()
        n = (img_hw[0] // patch) * (img_hw[1] // patch)
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.global_pool, self.cat_then_add = global_pool, cat_then_add
        if global_pool:
            self.fc_norm = nn.LayerNorm(dim, eps=EPS)
        else:
            self.norm = nn.LayerNorm(dim, eps=EPS)
        self.head = nn.Linear(dim, num_classes)

    def tokens(self, x):
        """[B, 1, H, W] -> tokens after the last block (and after ``norm`` without global pool)."""
        x = self.patch_embed(x)
        if self.cat_then_add:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        else:
            cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
            x = torch.cat([cls, x + self.pos_embed[:, 1:]], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return x if self.global_pool else self.norm(x)

    def forward_features(self, x):
        t = self.tokens(x)
        return self.fc_norm(t[:, 1:].mean(dim=1)) if self.global_pool else t[:, 0]

    def forward(self, x):
        return self.head(self.forward_features(x))


class MAE(nn.Module):
    """MAE pre-training model (encoder + ViT decoder) with the sources' fixed sin-cos tables over
    ``grid`` = the patch grid of the input image (H_p, W_p)."""

    def __init__(self, img_hw, patch, dim, depth, heads, dec_dim, dec_depth, dec_heads, table_grid=None):
        super().__init__()
        grid = (img_hw[0] // patch, img_hw[1] // patch)
        table_grid = table_grid or grid
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(sincos_table(dim, *table_grid)[None], requires_grad=False)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=EPS)
        self.decoder_embed = nn.Linear(dim, dec_dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, dec_dim) * 0.02)
        self.decoder_pos_embed = nn.Parameter(sincos_table(dec_dim, *table_grid)[None], requires_grad=False)
        self.decoder_blocks = nn.ModuleList(Block(dec_dim, dec_heads) for _ in range(dec_depth))
        self.decoder_norm = nn.LayerNorm(dec_dim, eps=EPS)
        self.decoder_pred = nn.Linear(dec_dim, patch * patch)

    def forward_encoder(self, x):
        """All patches visible (mask ratio 0): tokens [B, 1 + L, D] after ``norm``."""
        x = self.patch_embed(x) + self.pos_embed[:, 1:]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_decoder(self, latent):
        """Decoder over all-visible latents (ids_restore = identity): predictions [B, L, p*p]."""
        x = self.decoder_embed(latent) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]


def randomize_(module, seed):
    """Every parameter ~ N(0, 0.2) (LayerNorm gains around 1), so no tensor is at a symmetric init value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("pos_embed") and not p.requires_grad:
                continue  # the fixed sin-cos tables stay what the source computes
            noise = torch.randn(p.shape, generator=g) * 0.2
            p.copy_(noise + 1.0 if ("norm" in name and name.endswith("weight")) else noise)
    return module


def time_major_to_ours(tokens, f_p, t_p):
    """[B, 1 + T_p*F_p, D] time-major tokens (Audio-MAE) -> frequency-major (ours), cls kept first."""
    b, _, d = tokens.shape
    patches = tokens[:, 1:].reshape(b, t_p, f_p, d).transpose(1, 2).reshape(b, f_p * t_p, d)
    return torch.cat([tokens[:, :1], patches], dim=1)

