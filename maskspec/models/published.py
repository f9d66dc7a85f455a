"""Published ViT checkpoints -> MaskSpec weights: the MaskSpec authors' code and Audio-MAE (here), EAT
(``maskspec.models.published_eat``, dispatched to by `convert`).

Both sources are timm ViTs (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.<i>.{norm1, attn.qkv,
attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm`` or ``fc_norm``, ``head``) with MAE's pre-training decoder
(``decoder_embed``, ``mask_token``, ``decoder_pos_embed``, ``decoder_blocks``, ``decoder_norm``,
``decoder_pred``). What differs from our encoder, and how it is mapped exactly:

* Input layout. The authors' models take ``[B, 1, mel, frames]`` (github WangHelin1997/MaskSpec,
  ``models/models_vit.py``): patches frequency-major, as ours. Audio-MAE takes ``[B, 1, frames, mel]``
  (facebookresearch/AudioMAE, ``models_vit.py``, ``dataset.py``): its kernel is ``[D, 1, t, f]`` and its tokens
  are time-major (``t * F_p + f``). Its kernel is transposed to ours and its position rows are reordered to
  ``f * T_p + t``; attention does not depend on token order, so the tokens are the same vectors, reordered.
* Positions. Theirs are a ``[1, 1 + L, D]`` table, the first row for the cls token: learned in the authors'
  fine-tuned ViT, a frozen sin-cos table elsewhere (whose channel layout differs from ours: time first, and
  Audio-MAE's follows a (mel, time) grid over time-major tokens). All are imported as a learned table
  (``pos_embed: learned``) holding their values, and the cls row is added into ``cls_token``, which is what
  their forward computes (``cls_token + pos_embed[:, :1]``); our cls token has no position of its own.
* Pooling. timm's global pool (both sources' default fine-tuning) drops the final ``norm`` and normalises the
  mean of the patch tokens with ``fc_norm``: ``final_norm: false``. The authors' ``--cls_token`` variant keeps
  ``norm`` and reads the cls token: ``pool: cls``.
* Audio-MAE's released pre-training decoder is Swin-style (``--decoder_mode 1``) and does not map onto our
  ViT decoder: its tensors are dropped (named in the result) and the file gets a new, randomly initialised
  decoder, which fine-tuning and embeddings never use.

Every source tensor is either mapped (shape checked) or named as deliberately dropped; an unknown key or a
missing one is an error naming it. Block count and widths are read from the shapes; the number of attention
heads is not in the weights, so it comes from the standard ViT sizes or the caller.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

import torch

VIT_FORMATS = ("maskspec-authors", "audiomae")
# EAT's two layouts are mapped by maskspec.models.published_eat (data2vec 2.0 blocks, not timm's)
FORMATS = VIT_FORMATS + ("eat-fairseq", "eat-hf")

# Per format: input frames of the published models (the authors pre-train on 992 frames and fine-tune on
# 1000, of which the 16-stride kernel uses 992; Audio-MAE uses 1024), mask ratio and norm_pix_loss of their
# pre-training scripts (scripts/pretrain_vit.sh; submit_pretrain_audioset2M.sh).
FORMAT_DEFAULTS = {
    "maskspec-authors": dict(num_frames_pretrain=992, num_frames_finetuned=1000, mask_ratio=0.75,
                             norm_pix_loss=True, time_major=False),
    "audiomae": dict(num_frames_pretrain=1024, num_frames_finetuned=1024, mask_ratio=0.8, norm_pix_loss=True,
                     time_major=True),
}
# Heads of the standard ViT widths (the weights do not say): Ti, S, B, L, H; MAE's decoder 512 -> 16.
STANDARD_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}
STANDARD_DECODER_HEADS = {512: 16}
# Number of patch positions (without cls) of the published models, for format detection: the authors'
# 8 x 62 grid, Audio-MAE's 64 x 8 and its overlapping-patch variant 101 x 12 (not supported).
KNOWN_GRIDS = {496: "maskspec-authors", 512: "audiomae"}
OVERLAPPING_PATCHES = 1212

_BLOCK_PARTS = ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
                "mlp.fc2.bias")
_OPTIONAL_BLOCK_PARTS = ("attn.qkv.bias",)
_BLOCK_RE = re.compile(r"^(decoder_blocks|blocks)\.(\d+)\.(.+)$")
# Tensors that carry nothing the model file needs: the authors' mel front end buffers (non-persistent in
# their code, present only if saved by other means).
_IGNORED = ("mel.window", "mel.preemphasis_coefficient")
# Keys that would change the computation in a way we cannot reproduce: refused, not dropped.
_UNSUPPORTED = {
    "dist_token": "a distillation token (DeiT-style ViT)",
    "head_dist.weight": "a distillation head (DeiT-style ViT)",
    "pre_logits.fc.weight": "a representation layer before the head (timm representation_size)",
}


class CheckpointImportError(ValueError):
    """A checkpoint that cannot be imported; the message names the key or the reason."""


def _flatten(d: Mapping, prefix: str = "") -> Optional[dict]:
    """A dict of tensors and dicts of tensors (fairseq's ``_ema``: the teacher's tensors inside the state dict)
    as one dict with dotted keys; None if anything else is in it."""
    out = {}
    for k, v in d.items():
        if isinstance(v, torch.Tensor):
            out[prefix + str(k)] = v
        elif isinstance(v, Mapping) and (sub := _flatten(v, f"{prefix}{k}.")) is not None:
            out.update(sub)  # an empty dict adds nothing
        else:
            return None
    return out


def unwrap_state_dict(obj: Any, where: str) -> dict:
    """The weights of a loaded checkpoint: MAE's or fairseq's ``{'model': state_dict, ...}``, ``{'state_dict':
    ...}`` or a bare state dict; a DDP ``module.`` prefix is removed, nested dicts of tensors (fairseq's ``_ema``)
    become dotted keys (``_ema.blocks.0.norm1.weight``)."""
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    flat = _flatten(obj) if isinstance(obj, Mapping) and obj else None
    if not flat:
        raise CheckpointImportError(f"{where}: no state dict found (expected a dict of tensors, or one under "
                                    f"'model' or 'state_dict')")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in flat.items()}


def detect_format(sd: Mapping[str, torch.Tensor], where: str) -> str:
    """"maskspec-authors" or "audiomae" from the keys and the position table size, "eat-fairseq" or "eat-hf"
    from EAT's key names; an error otherwise."""
    from maskspec.models.published_eat import detect_eat

    eat = detect_eat(sd)
    if eat:
        return eat
    for key in ("patch_embed.proj.weight", "cls_token", "pos_embed", "blocks.0.attn.qkv.weight"):
        if key not in sd:
            raise CheckpointImportError(
                f"{where}: not a ViT checkpoint of a supported format ({', '.join(FORMATS)}): no {key!r} "
                f"(keys start with {sorted(sd)[:4]})")
    n = sd["pos_embed"].shape[-2] - 1
    if n == OVERLAPPING_PATCHES:
        raise CheckpointImportError(f"{where}: Audio-MAE with overlapping patches (--use_custom_patch, 101 x 12 "
                                    f"positions) is not supported: our patches do not overlap")
    if n not in KNOWN_GRIDS:
        raise CheckpointImportError(f"{where}: {n} patch positions match no published model (authors' 8 x 62 = "
                                    f"496, Audio-MAE's 64 x 8 = 512); give --format")
    return KNOWN_GRIDS[n]


def _count_blocks(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    ids = {int(m.group(2)) for k in sd if (m := _BLOCK_RE.match(k)) and m.group(1) == prefix}
    if ids and ids != set(range(max(ids) + 1)):
        raise CheckpointImportError(f"{prefix}: block numbers are not 0..{max(ids)}: missing "
                                    f"{sorted(set(range(max(ids) + 1)) - ids)[:3]}")
    return len(ids)


def _heads(width: int, given: Optional[int], table: Mapping[int, int], option: str) -> int:
    if given:
        return given
    if width not in table:
        raise CheckpointImportError(f"width {width} is not a standard ViT size, and the weights do not say how "
                                    f"many attention heads it has: give {option}")
    return table[width]


def _block_shapes(d: int, hidden: int) -> dict:
    """Shapes of one timm ViT block's tensors for width d and MLP width hidden."""
    return {"norm1.weight": (d,), "norm1.bias": (d,), "attn.qkv.weight": (3 * d, d), "attn.qkv.bias": (3 * d,),
            "attn.proj.weight": (d, d), "attn.proj.bias": (d,), "norm2.weight": (d,), "norm2.bias": (d,),
            "mlp.fc1.weight": (hidden, d), "mlp.fc1.bias": (hidden,), "mlp.fc2.weight": (d, hidden),
            "mlp.fc2.bias": (d,)}


def _is_plain_vit_decoder(sd: Mapping[str, torch.Tensor]) -> bool:
    """True when the decoder blocks have exactly the timm ViT block tensors (MAE's decoder, not Swin)."""
    parts = {m.group(3) for k in sd if (m := _BLOCK_RE.match(k)) and m.group(1) == "decoder_blocks"}
    return bool(parts) and parts <= set(_BLOCK_PARTS) and {"decoder_pred.weight", "decoder_embed.weight",
                                                            "decoder_pos_embed", "mask_token"} <= set(sd)


def convert(sd: Mapping[str, torch.Tensor], fmt: str, *, num_mel_bins: int = 128, num_frames: Optional[int] = None,
            num_heads: Optional[int] = None, decoder_num_heads: Optional[int] = None,
            where: str = "checkpoint", meta: Any = None) -> dict:
    """Map a source state dict onto a MaskSpec model.

    Returns dict(kind "pretrain"|"classifier", model_config (dict), state_dict (ours, complete except a
    decoder that was not imported), decoder_imported (bool), dropped (source keys deliberately not used),
    num_outputs (head size or None), notes (list of str)). ``num_frames`` defaults to the format's published
    input length. ``meta``: the source's own configuration where the format has one (EAT: the fairseq
    checkpoint's ``cfg`` or the Hugging Face ``config.json``).
    """
    if fmt not in FORMATS:
        raise CheckpointImportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt not in VIT_FORMATS:
        from maskspec.models.published_eat import EATImportError, convert_eat

        try:
            return convert_eat(sd, fmt, meta, num_mel_bins=num_mel_bins, num_frames=num_frames,
                               num_heads=num_heads, where=where)
        except EATImportError as e:
            raise CheckpointImportError(str(e)) from e
    defaults = FORMAT_DEFAULTS[fmt]
    for key, why in _UNSUPPORTED.items():
        if key in sd:
            raise CheckpointImportError(f"{where}: {key!r} is {why}, which MaskSpec models do not have")
    required = ("patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed")
    for key in required:
        if key not in sd:
            raise CheckpointImportError(f"{where}: missing key {key!r}")
    w = sd["patch_embed.proj.weight"]
    if w.dim() != 4 or w.shape[1] != 1 or w.shape[2] != w.shape[3]:
        raise CheckpointImportError(f"{where}: patch_embed.proj.weight of shape {tuple(w.shape)} is not a "
                                    f"one-channel square patch kernel")
    d, p = w.shape[0], w.shape[2]
    depth = _count_blocks(sd, "blocks")
    if depth == 0:
        raise CheckpointImportError(f"{where}: missing key 'blocks.0.attn.qkv.weight' (no transformer blocks)")
    if num_mel_bins % p:
        raise CheckpointImportError(f"{where}: {num_mel_bins} mel bins are not a whole number of {p}-bin patches")
    f_p = num_mel_bins // p
    n_pos = sd["pos_embed"].shape[-2] - 1
    if sd["pos_embed"].shape != (1, n_pos + 1, d) or n_pos % f_p:
        raise CheckpointImportError(f"{where}: pos_embed of shape {tuple(sd['pos_embed'].shape)} is not "
                                    f"[1, 1 + {f_p} x T_p, {d}] for {num_mel_bins} mel bins")
    t_p = n_pos // f_p
    is_classifier = "head.weight" in sd
    has_decoder = any(k.startswith(("decoder_", "mask_token")) for k in sd)
    if is_classifier and has_decoder:
        raise CheckpointImportError(f"{where}: has both a classification head and a pre-training decoder")
    final_norm = "norm.weight" in sd
    pool = "mean"
    if is_classifier:
        if "fc_norm.weight" in sd and final_norm:
            raise CheckpointImportError(f"{where}: has both 'norm' and 'fc_norm' (global pool drops 'norm')")
        if "fc_norm.weight" not in sd:
            if not final_norm:
                raise CheckpointImportError(f"{where}: missing key 'fc_norm.weight' (or 'norm.weight')")
            pool = "cls"  # timm's cls-token head: norm, then the cls token
    elif not final_norm:
        raise CheckpointImportError(f"{where}: missing key 'norm.weight'")
    if num_frames is None:
        num_frames = defaults["num_frames_finetuned" if is_classifier else "num_frames_pretrain"]
    if num_frames // p != t_p:
        raise CheckpointImportError(f"{where}: {n_pos} positions = {f_p} x {t_p} patches, which {num_frames} "
                                    f"frames do not give with {p}-frame patches; give the model's --num_frames")

    mlp_hidden = sd["blocks.0.mlp.fc1.weight"].shape[0] if "blocks.0.mlp.fc1.weight" in sd else 4 * d
    cfg = dict(patch_size=p, num_mel_bins=num_mel_bins, num_frames=num_frames, embed_dim=d, depth=depth,
               num_heads=_heads(d, num_heads, STANDARD_HEADS, "--num_heads"), mlp_ratio=mlp_hidden / d,
               qkv_bias="blocks.0.attn.qkv.bias" in sd, pos_embed="learned", final_norm=final_norm, pool=pool,
               mask_ratio=defaults["mask_ratio"], norm_pix_loss=defaults["norm_pix_loss"], drop_path=0.0)
    time_major = defaults["time_major"]

    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(src: str, dst: str, shape: tuple, value: Optional[torch.Tensor] = None) -> None:
        if src not in sd:
            raise CheckpointImportError(f"{where}: missing key {src!r}")
        if tuple(sd[src].shape) != tuple(shape):
            raise CheckpointImportError(f"{where}: {src} has shape {tuple(sd[src].shape)}, expected {tuple(shape)}")
        out[dst] = (sd[src] if value is None else value).detach().float().clone()
        used.add(src)

    def take_blocks(prefix: str, dst_prefix: str, count: int, shapes: dict) -> None:
        """The transformer blocks ``<prefix>.<i>.<part>`` (encoder or decoder: the same parts and names)."""
        for i in range(count):
            for part in _BLOCK_PARTS:
                if part in _OPTIONAL_BLOCK_PARTS and not cfg["qkv_bias"]:
                    continue
                take(f"{prefix}.{i}.{part}", f"{dst_prefix}.{i}.{part}", shapes[part])

    def positions(table: torch.Tensor) -> torch.Tensor:
        """[L, D'] rows in the source's token order -> ours (row-major (f, t))."""
        if not time_major:
            return table
        return table.reshape(t_p, f_p, -1).transpose(0, 1).reshape(f_p * t_p, -1)

    kernel = w.transpose(2, 3) if time_major else w
    take("patch_embed.proj.weight", "encoder.patch_embed.proj.weight", (d, 1, p, p), kernel)
    take("patch_embed.proj.bias", "encoder.patch_embed.proj.bias", (d,))
    pe = sd["pos_embed"][0]
    take("cls_token", "encoder.cls_token", (1, 1, d), sd["cls_token"] + pe[0])
    take("pos_embed", "encoder.pos_embed.table", (1, n_pos + 1, d), positions(pe[1:]))
    take_blocks("blocks", "encoder.blocks", depth, _block_shapes(d, mlp_hidden))
    if final_norm:
        take("norm.weight", "encoder.norm.weight", (d,))
        take("norm.bias", "encoder.norm.bias", (d,))
    num_outputs = None
    dropped: list[str] = [k for k in _IGNORED if k in sd]
    decoder_imported = False
    if is_classifier:
        num_outputs = sd["head.weight"].shape[0]
        take("head.weight", "head.weight", (num_outputs, d))
        take("head.bias", "head.bias", (num_outputs,))
        if pool == "mean":
            take("fc_norm.weight", "fc_norm.weight", (d,))
            take("fc_norm.bias", "fc_norm.bias", (d,))
    elif has_decoder and not time_major and _is_plain_vit_decoder(sd):
        dd = sd["decoder_embed.weight"].shape[0]
        dec_depth = _count_blocks(sd, "decoder_blocks")
        cfg.update(decoder_embed_dim=dd, decoder_depth=dec_depth,
                   decoder_num_heads=_heads(dd, decoder_num_heads, STANDARD_DECODER_HEADS, "--decoder_num_heads"))
        dpe = sd["decoder_pos_embed"]
        if dpe.shape == (1, n_pos + 1, dd) and bool(dpe[0, 0].abs().max() > 0):
            raise CheckpointImportError(f"{where}: decoder_pos_embed gives the decoder's cls token a position "
                                        f"(row 0 is not zero), which our decoder cannot take")
        take("decoder_embed.weight", "decoder_embed.weight", (dd, d))
        take("decoder_embed.bias", "decoder_embed.bias", (dd,))
        take("mask_token", "mask_token", (1, 1, dd))
        take("decoder_pos_embed", "decoder_pos_embed.table", (1, n_pos + 1, dd), dpe[0, 1:])
        dhidden = int(dd * cfg["mlp_ratio"])  # as our Block sizes it
        dshapes = _block_shapes(dd, dhidden)
        if "decoder_blocks.0.mlp.fc1.weight" in sd and sd["decoder_blocks.0.mlp.fc1.weight"].shape[0] != dhidden:
            raise CheckpointImportError(f"{where}: decoder MLP width differs from the encoder's ratio "
                                        f"{cfg['mlp_ratio']}, which our config shares between them")
        take_blocks("decoder_blocks", "decoder_blocks", dec_depth, dshapes)
        take("decoder_norm.weight", "decoder_norm.weight", (dd,))
        take("decoder_norm.bias", "decoder_norm.bias", (dd,))
        take("decoder_pred.weight", "decoder_pred.weight", (p * p, dd))
        take("decoder_pred.bias", "decoder_pred.bias", (p * p,))
        decoder_imported = True
    elif has_decoder:
        # Audio-MAE's decoder: Swin blocks over a time-major grid (or a ViT decoder whose targets are
        # time-major patches); neither maps onto our decoder, and fine-tuning and embeddings never use it.
        dropped += sorted(k for k in sd if k.startswith(("decoder_", "mask_token")))
    unknown = [k for k in sd if k not in used and k not in dropped]
    if unknown:
        raise CheckpointImportError(f"{where}: unknown key {unknown[0]!r} (shape {tuple(sd[unknown[0]].shape)})"
                                    + (f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""))
    return dict(kind="classifier" if is_classifier else "pretrain", model_config=cfg, state_dict=out,
                decoder_imported=decoder_imported, dropped=dropped, num_outputs=num_outputs, notes=[])
