"""EAT checkpoints -> MaskSpec weights (github cwx-worst-one/EAT; Hugging Face worstchan/EAT-*).

EAT is data2vec 2.0's multi-modal model with the image modality on a one-channel spectrogram. What its code
computes (``models/EAT_pretraining.py``, ``models/images.py``, ``models/base.py``, ``models/modules.py``,
``models/mae.py``, ``config/pretraining_AS2M.yaml``, ``models/EAT_audio_classification.py``) and how each part maps:

* Input ``[B, 1, frames, 128 mel]`` (``img_size = (target_length, 128)``), a timm ``PatchEmbed`` (16 x 16
  conv, one channel): tokens are time-major (``t * 8 + f``) and the kernel is ``[D, 1, t, f]``. The kernel is
  transposed to ours; attention does not depend on token order, so the tokens are the same vectors, reordered.
* Positions: a fixed (frozen) sin-cos table ``get_2d_sincos_pos_embed_flexible(D, (T_p, 8))``, no cls row, added
  to the patches; its first half of channels codes the mel index and its second half the time index, which is
  our ``sincos_2d`` over frequency-major rows. When the stored table equals ours (within float32 rounding) the
  model file gets fixed positions (``pos_embed: extend``, any length, as EAT's fixed table); otherwise the
  stored values as a learned table.
* The cls token (``extra_tokens``, ``num_extra_tokens: 1``) is prepended after the positions: no position, as
  ours. Then a LayerNorm over all tokens (``context_encoder.norm``: data2vec 2.0's ``BlockEncoder`` with
  ``layer_norm_first: false`` normalises its input; ``prenet_depth: 0``, so it holds no blocks): ``embed_norm``.
* Blocks: data2vec 2.0's ``AltBlock`` with ``layer_norm_first: false`` (the EAT default; its configs never set
  it): post-norm, ``x = LN1(x + Attn(x)); x = LN2(x + Mlp(x))``, LayerNorm eps 1e-6 (``norm_eps``), qkv bias,
  GELU MLP: ``post_norm``. No LayerNorm after the last block (``norm`` exists only with layer_norm_first):
  ``final_norm: false``.
* Fine-tuned tagger (``MaeImageClassificationModel``): the cls token (``prediction_mode: CLS_TOKEN``, EAT's
  default) or the mean of the patch tokens (``MEAN_POOLING``), then ``fc_norm`` (eps 1e-6; ``use_fc_norm``) and
  ``head``: ``pool: cls`` + ``cls_fc_norm``, or ``pool: mean``. A pre-trained import gets ``pool: cls`` +
  ``cls_fc_norm`` too, so that fine-tuning from it (``--init``) builds EAT's fine-tuning head.
* Pre-training: a pre-trained import is a model file of MaskSpec's bootstrap objective (``objective:
  bootstrap``, ``maskspec.models.bootstrap``: data2vec 2.0 / EAT's EMA teacher, layer-averaged targets, CNN
  decoder, cls loss) with EAT's settings (cls loss weight, averaged layers, EMA schedule, mask ratio). EAT's CNN
  decoder (``modality_encoders.IMAGE.decoder``, data2vec 2.0's ``Decoder2d``) is imported into ours where it
  fits (`_map_decoder`: the same layers; its LayerNorm eps is 1e-5, ours 1e-6; hidden positions get a zero
  mask token where EAT draws N(0, 0.01) noise), else dropped and a new one built. Named as dropped: the EMA
  teacher (``_ema``: a full copy of the student's weights; a bootstrap model file keeps the student, and
  training starts its teacher as a copy of it) and the training-only projections (``shared_decoder``,
  ``recon_proj``, ``cls_proj``, ``center``). The bootstrap objective's utterance loss is what makes the cls token
  the scene embedding of such a file (``maskspec.inference.embed``), as EAT's README recommends its CLS features.

Two layouts hold these weights:

* ``eat-fairseq``: fairseq checkpoints ``{'model': state_dict, 'cfg': {...}, ...}``. Pre-trained: the student's
  keys ``modality_encoders.IMAGE.{local_encoder.proj, extra_tokens, fixed_positional_encoder.positions,
  context_encoder.norm, decoder.*}``, ``blocks.<i>.*`` and ``_ema`` (a dict of the teacher's tensors).
  Fine-tuned: the same under ``model.`` plus ``fc_norm`` and ``head``. ``cfg`` (plain containers) gives the
  heads, ``layer_norm_first``, ``norm_eps``, the prediction mode and ``target_length`` when it is there.
* ``eat-hf``: the Hugging Face port (``EATModel`` wrapping ``EAT`` as ``model``; ``config.json`` with
  ``embed_dim, depth, num_heads, patch_size, stride, in_chans, mel_bins, max_length, num_classes,
  model_variant, mlp_ratio, qkv_bias, layer_norm_first, norm_eps, norm_affine, fixed_positions, img_size``):
  ``model.{local_encoder.proj, extra_tokens, fixed_positional_encoder.positions (max_length x 8 rows),
  pre_norm, blocks.<i>.*}`` and, for ``model_variant: finetune``, ``model.{fc_norm, head}``; its ``fc_norm`` is
  built with PyTorch's default eps 1e-5 (``fc_norm_eps``), its forward reads the cls token.

Every source tensor is mapped (shape checked) or named as dropped; an unknown or missing key is an error naming it.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

import torch

from maskspec.models.pos_embed import sincos_2d

EAT_FORMATS = ("eat-fairseq", "eat-hf")
# feature_extract/feature_extract.py (--norm_mean / --norm_std defaults), applied as (fbank - mean) / (2 std)
EAT_MEAN, EAT_STD = -4.268, 4.569
EAT_NUM_FRAMES = 1024  # target_length of pre-training and AudioSet fine-tuning (config/*.yaml)
EAT_MASK_RATIO = 0.8  # config/pretraining_AS2M.yaml mask_prob (inverse block masks)
FAIRSEQ_PREFIX = "modality_encoders.IMAGE."
# eps of the tagger's fc_norm: fairseq's classifier builds it with 1e-6, the Hugging Face port with nn.LayerNorm's
# default (the blocks' and the input norm's eps is norm_eps, 1e-6, as ours)
FAIRSEQ_FC_NORM_EPS, HF_FC_NORM_EPS = 1e-6, 1e-5
STANDARD_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}
# positions whose values differ from our sin-cos table by less than this are our fixed table (float32 rounding
# of their numpy table is ~4e-6 at 64 time columns)
SINCOS_TOL = 1e-4

_BLOCK_PARTS = ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
                "mlp.fc2.bias")
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.")
# training-only parts of the pre-training model (fairseq layout, after any "model." is removed); the CNN decoder
# is mapped where it fits our CNN decoder (see `_map_decoder`), else dropped too
_FAIRSEQ_DROPPED = ("_ema.", FAIRSEQ_PREFIX + "decoder.", "shared_decoder.", "recon_proj.", "cls_proj.")
_FAIRSEQ_DROPPED_KEYS = ("center",)
DECODER_PREFIX = FAIRSEQ_PREFIX + "decoder."
_DECODER_RE = re.compile(r"^" + re.escape(DECODER_PREFIX) + r"blocks\.(\d+)\.0\.(weight|bias)$")
# EAT's pre-training objective (config/pretraining_AS2M.yaml) where the checkpoint's cfg does not say: the
# cls loss weight, the teacher's averaged top layers (all 12), its EMA decay schedule and the CNN decoder
EAT_OBJECTIVE = dict(cls_loss=1.0, average_top_k_layers=12, ema_decay=0.9998, ema_end_decay=0.99999,
                     ema_anneal_end_step=100000)
EAT_DECODER = dict(decoder_groups=16, decoder_kernel=3, decoder_layers=6)


class EATImportError(ValueError):
    """An EAT checkpoint that cannot be imported; the message names the key or the reason."""


def detect_eat(sd: Mapping[str, Any]) -> Optional[str]:
    """"eat-fairseq" or "eat-hf" when the keys are EAT's, else None."""
    if any(k.startswith((FAIRSEQ_PREFIX, "model." + FAIRSEQ_PREFIX)) for k in sd):
        return "eat-fairseq"
    if "model.local_encoder.proj.weight" in sd and "model.extra_tokens" in sd:
        return "eat-hf"
    return None


def _get(meta: Any, *path: str) -> Any:
    """meta[path[0]][path[1]]... or None where a level is missing or not a mapping."""
    for key in path:
        if not isinstance(meta, Mapping) or key not in meta:
            return None
        meta = meta[key]
    return meta


def _canonical(sd: Mapping[str, torch.Tensor], fmt: str) -> tuple[dict, list, bool]:
    """Source keys -> one naming for both layouts: ``patch.weight``, ``cls``, ``positions``, ``embed_norm.*``,
    ``blocks.<i>.*``, ``fc_norm.*``, ``head.*``. Returns (canonical name -> source key, dropped source keys,
    fine-tuned)."""
    names, dropped = {}, []
    if fmt == "eat-hf":
        fine_tuned = "model.head.weight" in sd
        for key in sd:
            if not key.startswith("model."):
                names[key] = key  # unknown: reported as such
                continue
            k = key[len("model."):]
            k = {"local_encoder.proj.weight": "patch.weight", "local_encoder.proj.bias": "patch.bias",
                 "extra_tokens": "cls", "fixed_positional_encoder.positions": "positions"}.get(k, k)
            if k.startswith("pre_norm."):
                k = "embed_norm." + k[len("pre_norm."):]
            names[k] = key
        return names, dropped, fine_tuned
    fine_tuned = "head.weight" in sd
    for key in sd:
        k = key[len("model."):] if fine_tuned and key.startswith("model.") else key
        if k.startswith(_FAIRSEQ_DROPPED) or k in _FAIRSEQ_DROPPED_KEYS:
            dropped.append(key)
            continue
        if k.startswith(FAIRSEQ_PREFIX):
            rest = k[len(FAIRSEQ_PREFIX):]
            k = {"local_encoder.proj.weight": "patch.weight", "local_encoder.proj.bias": "patch.bias",
                 "extra_tokens": "cls", "fixed_positional_encoder.positions": "positions",
                 "context_encoder.norm.weight": "embed_norm.weight",
                 "context_encoder.norm.bias": "embed_norm.bias"}.get(rest, key)
        names[k] = key
    return names, dropped, fine_tuned


def _settings(fmt: str, meta: Any, fine_tuned: bool) -> dict:
    """What the source's configuration says (None where it says nothing): heads, layer_norm_first, norm_eps,
    prediction mode, target length, norm_affine, the Hugging Face model_variant."""
    if fmt == "eat-hf":
        img = _get(meta, "img_size")
        return dict(num_heads=_get(meta, "num_heads"), layer_norm_first=_get(meta, "layer_norm_first"),
                    norm_eps=_get(meta, "norm_eps"), prediction_mode="CLS_TOKEN" if fine_tuned else None,
                    target_length=img[0] if isinstance(img, (list, tuple)) and img else None,
                    norm_affine=_get(meta, "norm_affine"), variant=_get(meta, "model_variant"))
    model = _get(meta, "model")
    pre = _get(model, "pretrained_model_args", "model") if fine_tuned else model
    mode = _get(model, "prediction_mode") if fine_tuned else None
    target = (_get(model, "target_length") if fine_tuned else
              _get(meta, "task", "target_length") or _get(model, "modalities", "image", "target_length"))
    return dict(num_heads=_get(pre, "num_heads"), layer_norm_first=_get(pre, "layer_norm_first"),
                norm_eps=_get(pre, "norm_eps"), prediction_mode=None if mode is None else str(mode),
                target_length=target, norm_affine=_get(pre, "norm_affine"), variant=None)


def convert_eat(sd: Mapping[str, torch.Tensor], fmt: str, meta: Any = None, *, num_mel_bins: int = 128,
                num_frames: Optional[int] = None, num_heads: Optional[int] = None,
                where: str = "checkpoint") -> dict:
    """Map an EAT state dict (either layout) onto a MaskSpec model; ``meta``: the fairseq checkpoint's ``cfg`` or
    the Hugging Face ``config.json`` (either may be None). Returns what `maskspec.models.published.convert` does,
    plus ``notes``."""
    if fmt not in EAT_FORMATS:
        raise EATImportError(f"unknown EAT format {fmt!r}; use one of {', '.join(EAT_FORMATS)}")
    names, dropped, fine_tuned = _canonical(sd, fmt)
    st = _settings(fmt, meta, fine_tuned)
    notes: list[str] = []
    if st["layer_norm_first"]:
        raise EATImportError(f"{where}: layer_norm_first is true (pre-norm data2vec 2.0 blocks); EAT's models "
                             f"use post-norm blocks, and data2vec 2.0's pre-norm AltBlock drops the residual around "
                             f"its MLP, which MaskSpec blocks do not reproduce")
    if st["norm_eps"] is not None and abs(float(st["norm_eps"]) - 1e-6) > 1e-12:
        raise EATImportError(f"{where}: norm_eps {st['norm_eps']}; MaskSpec's LayerNorms use EAT's 1e-6")
    if st["norm_affine"] is False:
        raise EATImportError(f"{where}: norm_affine is false (LayerNorms without weights), which EAT's models "
                             f"do not use and MaskSpec's LayerNorms do not have")
    mode = (st["prediction_mode"] or "CLS_TOKEN").upper()
    if fine_tuned and "LIN_SOFTMAX" in mode:
        raise EATImportError(f"{where}: prediction_mode LIN_SOFTMAX (a soft pooling of the tokens) is not "
                             f"supported; EAT's taggers read the cls token")
    if fmt == "eat-hf" and st["variant"] not in (None, "pretrain", "finetune"):
        raise EATImportError(f"{where}: config.json model_variant {st['variant']!r} is neither 'pretrain' nor "
                             f"'finetune'")
    if fmt == "eat-hf" and st["variant"] is not None and (st["variant"] == "finetune") != fine_tuned:
        raise EATImportError(f"{where}: config.json says model_variant {st['variant']!r} but the weights "
                             f"{'have' if fine_tuned else 'have no'} 'model.head.weight'")

    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def src(name: str) -> torch.Tensor:
        if name not in names:
            raise EATImportError(f"{where}: missing key {_source_name(name, fmt, fine_tuned)!r}")
        return sd[names[name]]

    def take(name: str, dst: str, shape: tuple, value: Optional[torch.Tensor] = None) -> None:
        t = src(name)
        if tuple(t.shape) != tuple(shape):
            raise EATImportError(f"{where}: {names[name]} has shape {tuple(t.shape)}, expected {tuple(shape)}")
        out[dst] = (t if value is None else value).detach().float().clone()
        used.add(names[name])

    w = src("patch.weight")
    if w.dim() != 4 or w.shape[1] != 1 or w.shape[2] != w.shape[3]:
        raise EATImportError(f"{where}: {names['patch.weight']} of shape {tuple(w.shape)} is not a one-channel "
                             f"square patch kernel")
    d, p = int(w.shape[0]), int(w.shape[2])
    if num_mel_bins % p:
        raise EATImportError(f"{where}: {num_mel_bins} mel bins are not a whole number of {p}-bin patches")
    f_p = num_mel_bins // p
    if num_frames is None and st["target_length"]:
        num_frames = int(st["target_length"])
    if num_frames is None and fmt == "eat-fairseq" and "positions" in names and src("positions").dim() == 3:
        # fairseq's table is built for img_size = (target_length, mel): its rows give the length
        num_frames = src("positions").shape[1] // f_p * p
    if num_frames is None:
        num_frames = EAT_NUM_FRAMES
    t_p = num_frames // p
    if t_p < 1:
        raise EATImportError(f"{where}: {num_frames} frames hold no {p}-frame patch")
    ids = sorted({int(m.group(1)) for k in names if (m := _BLOCK_RE.match(k))})
    if not ids:
        raise EATImportError(f"{where}: missing key {_source_name('blocks.0.attn.qkv.weight', fmt, fine_tuned)!r} "
                             f"(no transformer blocks)")
    if ids != list(range(len(ids))):
        raise EATImportError(f"{where}: block numbers are not 0..{ids[-1]}: missing "
                             f"{sorted(set(range(ids[-1] + 1)) - set(ids))[:3]}")
    depth = len(ids)
    hidden = int(src("blocks.0.mlp.fc1.weight").shape[0])
    qkv_bias = "blocks.0.attn.qkv.bias" in names
    if num_heads is None:
        num_heads = st["num_heads"]
    if num_heads is None:
        if d not in STANDARD_HEADS:
            raise EATImportError(f"width {d} is not a standard ViT size, and neither the weights nor the "
                                 f"checkpoint's configuration say how many attention heads it has: give --num_heads")
        num_heads = STANDARD_HEADS[d]

    # positions: [1, T_max * F_p, D], time-major rows
    pos_embed = "extend"
    table = None
    if "positions" in names:
        pe = src("positions")
        if pe.dim() != 3 or pe.shape[0] != 1 or pe.shape[2] != d or pe.shape[1] % f_p:
            raise EATImportError(f"{where}: {names['positions']} of shape {tuple(pe.shape)} is not "
                                 f"[1, T_p x {f_p}, {d}] for {num_mel_bins} mel bins")
        t_max = pe.shape[1] // f_p
        if t_p > t_max:
            raise EATImportError(f"{where}: {num_frames} frames need {t_p} time columns of positions, the "
                                 f"table has {t_max}; give the model's --num_frames")
        table = pe[0].reshape(t_max, f_p, d)[:t_p].transpose(0, 1).reshape(f_p * t_p, d).float()
        gap = float((table - sincos_2d(d, f_p, t_p)).abs().max())
        if gap <= SINCOS_TOL:
            notes.append(f"positions: EAT's fixed sin-cos table, as MaskSpec's fixed one (largest difference "
                         f"{gap:.1e}, float32 rounding of theirs)")
        else:
            pos_embed = "learned"
            notes.append(f"positions: the stored table is not the sin-cos one (largest difference {gap:.2g}); "
                         f"imported as a learned table of {t_p} time columns")
        used.add(names["positions"])
    elif fmt == "eat-hf" and _get(meta, "fixed_positions") is not False:
        notes.append("positions: not stored; EAT's fixed sin-cos table, computed (as MaskSpec's fixed one)")
    else:
        raise EATImportError(f"{where}: missing key {_source_name('positions', fmt, fine_tuned)!r}")

    # a pre-trained model's config is what fine-tuning from it builds: EAT's fine-tuning default (cls + fc_norm)
    pool, cls_fc_norm = "cls", True
    num_outputs = None
    # the port's tagger has its own eps; a pre-trained model gets the head of EAT's (fairseq) fine-tuning
    fc_norm_eps = HF_FC_NORM_EPS if fmt == "eat-hf" and fine_tuned else FAIRSEQ_FC_NORM_EPS
    if fine_tuned:
        has_fc_norm = "fc_norm.weight" in names
        if "MEAN_POOLING" in mode:
            if not has_fc_norm:
                raise EATImportError(f"{where}: mean pooling without fc_norm (use_fc_norm false) is not supported")
            pool, cls_fc_norm = "mean", False
        else:
            cls_fc_norm = has_fc_norm
        num_outputs = int(src("head.weight").shape[0])

    cfg = dict(patch_size=p, num_mel_bins=num_mel_bins, num_frames=num_frames, embed_dim=d, depth=depth,
               num_heads=int(num_heads), mlp_ratio=hidden / d, qkv_bias=qkv_bias, pos_embed=pos_embed,
               final_norm=False, pool=pool, post_norm=True, embed_norm=True, cls_fc_norm=cls_fc_norm,
               fc_norm_eps=fc_norm_eps, mask_ratio=EAT_MASK_RATIO, norm_pix_loss=True, drop_path=0.0)

    take("patch.weight", "encoder.patch_embed.proj.weight", (d, 1, p, p), w.transpose(2, 3))
    take("patch.bias", "encoder.patch_embed.proj.bias", (d,))
    take("cls", "encoder.cls_token", (1, 1, d))
    if pos_embed == "learned":
        out["encoder.pos_embed.table"] = table.clone()
    take("embed_norm.weight", "encoder.embed_norm.weight", (d,))
    take("embed_norm.bias", "encoder.embed_norm.bias", (d,))
    shapes = {"norm1.weight": (d,), "norm1.bias": (d,), "attn.qkv.weight": (3 * d, d), "attn.qkv.bias": (3 * d,),
              "attn.proj.weight": (d, d), "attn.proj.bias": (d,), "norm2.weight": (d,), "norm2.bias": (d,),
              "mlp.fc1.weight": (hidden, d), "mlp.fc1.bias": (hidden,), "mlp.fc2.weight": (d, hidden),
              "mlp.fc2.bias": (d,)}
    for i in range(depth):
        for part in _BLOCK_PARTS:
            if part == "attn.qkv.bias" and not qkv_bias:
                continue
            take(f"blocks.{i}.{part}", f"encoder.blocks.{i}.{part}", shapes[part])
    if fine_tuned:
        take("head.weight", "head.weight", (num_outputs, d))
        take("head.bias", "head.bias", (num_outputs,))
        if pool == "mean" or cls_fc_norm:
            take("fc_norm.weight", "fc_norm.weight", (d,))
            take("fc_norm.bias", "fc_norm.bias", (d,))
    decoder_imported = False
    if not fine_tuned:
        decoder_imported = _bootstrap_objective(sd, fmt, meta, d, depth, cfg, out, dropped, used, notes)
    if dropped:
        notes.append("dropped: " + ", ".join(_dropped_groups(dropped)))
    unknown = [k for k in sd if k not in used and k not in dropped]
    if unknown:
        raise EATImportError(f"{where}: unknown key {unknown[0]!r} (shape {tuple(sd[unknown[0]].shape)})"
                             + (f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""))
    return dict(kind="classifier" if fine_tuned else "pretrain", model_config=cfg, state_dict=out,
                decoder_imported=decoder_imported, dropped=dropped, num_outputs=num_outputs, notes=notes)


def _bootstrap_objective(sd: Mapping[str, torch.Tensor], fmt: str, meta: Any, d: int, depth: int, cfg: dict,
                         out: dict, dropped: list, used: set, notes: list) -> bool:
    """A pre-trained EAT model as a model file of MaskSpec's bootstrap objective (``maskspec.models.bootstrap``,
    data2vec 2.0 / EAT's: EMA teacher, layer-averaged targets, CNN decoder, cls loss): ``cfg`` gets EAT's settings
    (from the checkpoint's cfg where it has them) and, when EAT's decoder fits ours, ``out`` its weights (the
    decoder's keys then move from ``dropped`` to ``used``). Returns whether the decoder was imported. The teacher
    is not kept: a bootstrap model file holds the student, and training starts its teacher as a copy of it."""
    model = _get(meta, "model") if fmt == "eat-fairseq" else None
    obj = {k: (_get(model, k) if _get(model, k) is not None else v) for k, v in EAT_OBJECTIVE.items()}
    mask_prob = _get(model, "modalities", "image", "mask_prob")
    cfg.update(objective="bootstrap", utterance_loss_weight=float(obj["cls_loss"]),
               target_top_k=min(int(obj["average_top_k_layers"]), depth), ema_decay=float(obj["ema_decay"]),
               ema_end_decay=float(obj["ema_end_decay"]), ema_anneal_steps=int(obj["ema_anneal_end_step"]),
               mask_ratio=float(mask_prob) if mask_prob is not None else cfg["mask_ratio"])
    dec_keys = [k for k in dropped if k.startswith(DECODER_PREFIX)]
    mapped = _map_decoder(sd, dec_keys, d) if dec_keys else None
    if mapped is not None:
        sizes, weights = mapped
        cfg.update(decoder_type="cnn", **sizes)
        out.update(weights)
        dropped[:] = [k for k in dropped if k not in dec_keys]
        used.update(dec_keys)
        notes.append(f"objective: bootstrap, EAT's CNN decoder imported ({sizes['decoder_depth']} layers, kernel "
                     f"{sizes['decoder_kernel']}, {sizes['decoder_groups']} groups); the EMA teacher is not "
                     f"(training starts it as a copy of the student)")
        return True
    dec = _get(model, "modalities", "image", "decoder") or {}
    groups = int(dec.get("decoder_groups", EAT_DECODER["decoder_groups"]))
    cfg.update(decoder_type="cnn", decoder_embed_dim=int(dec.get("decoder_dim", d)),
               decoder_depth=int(dec.get("decoder_layers", EAT_DECODER["decoder_layers"])),
               decoder_kernel=int(dec.get("decoder_kernel", EAT_DECODER["decoder_kernel"])),
               decoder_groups=groups if int(dec.get("decoder_dim", d)) % groups == 0 else 1)
    notes.append("objective: bootstrap (EAT's); " + ("its CNN decoder does not fit ours (a first layer that changes "
                 "the width): a new one, " if dec_keys else "no decoder in the weights: a new CNN decoder, ")
                 + "which fine-tuning and embeddings never use")
    return False


def _map_decoder(sd: Mapping[str, torch.Tensor], keys: list, d: int) -> Optional[tuple[dict, dict]]:
    """EAT's CNN decoder (data2vec 2.0's ``Decoder2d``: per layer a grouped conv over the time-major (T_p, F_p)
    grid, a LayerNorm without weights over the channels, GELU, a residual sum; then ``proj``) as ours
    (``maskspec.models.cnn_decoder``: the same layers over the (F_p, T_p) grid, so each kernel is transposed, with
    an input projection, here the identity, and LayerNorm weights, here ones and zeros; masked positions get a
    mask token, here zeros, where EAT draws N(0, 0.01) noise). None when it does not fit: a width change in the
    first layer (EAT then has no residual there) or parts ours does not have."""
    layers = {}
    for k in keys:
        m = _DECODER_RE.match(k)
        if m:
            layers.setdefault(int(m.group(1)), {})[m.group(2)] = sd[k]
        elif k not in (DECODER_PREFIX + "proj.weight", DECODER_PREFIX + "proj.bias"):
            return None
    n = len(layers)
    if not n or sorted(layers) != list(range(n)) or any(set(v) != {"weight", "bias"} for v in layers.values()):
        return None
    if DECODER_PREFIX + "proj.weight" not in sd or DECODER_PREFIX + "proj.bias" not in sd:
        return None
    w0 = layers[0]["weight"]
    if w0.dim() != 4 or w0.shape[2] != w0.shape[3] or w0.shape[2] % 2 == 0:
        return None
    dd, k = int(w0.shape[0]), int(w0.shape[2])
    if dd != d or d % w0.shape[1]:
        return None
    groups = d // int(w0.shape[1])
    for i in range(n):
        w, b = layers[i]["weight"], layers[i]["bias"]
        if tuple(w.shape) != (dd, dd // groups, k, k) or tuple(b.shape) != (dd,):
            return None
    pw, pb = sd[DECODER_PREFIX + "proj.weight"], sd[DECODER_PREFIX + "proj.bias"]
    if tuple(pw.shape) != (d, dd) or tuple(pb.shape) != (d,):
        return None
    out = {"cnn_decoder.embed.weight": torch.eye(dd, d), "cnn_decoder.embed.bias": torch.zeros(dd),
           "cnn_decoder.mask_token": torch.zeros(1, 1, dd),
           "cnn_decoder.pred.weight": pw.detach().float().clone(), "cnn_decoder.pred.bias": pb.detach().float().clone()}
    for i in range(n):
        out[f"cnn_decoder.layers.{i}.conv.weight"] = layers[i]["weight"].detach().float().transpose(2, 3).contiguous()
        out[f"cnn_decoder.layers.{i}.conv.bias"] = layers[i]["bias"].detach().float().clone()
        out[f"cnn_decoder.layers.{i}.norm.weight"] = torch.ones(dd)
        out[f"cnn_decoder.layers.{i}.norm.bias"] = torch.zeros(dd)
    return dict(decoder_embed_dim=dd, decoder_depth=n, decoder_kernel=k, decoder_groups=groups), out


def _source_name(name: str, fmt: str, fine_tuned: bool) -> str:
    """The source key of a canonical name, for messages."""
    if fmt == "eat-hf":
        hf = {"patch.weight": "local_encoder.proj.weight", "patch.bias": "local_encoder.proj.bias",
              "cls": "extra_tokens", "positions": "fixed_positional_encoder.positions"}.get(name, name)
        return "model." + (hf.replace("embed_norm.", "pre_norm.", 1) if hf.startswith("embed_norm.") else hf)
    fs = {"patch.weight": "local_encoder.proj.weight", "patch.bias": "local_encoder.proj.bias",
          "cls": "extra_tokens", "positions": "fixed_positional_encoder.positions",
          "embed_norm.weight": "context_encoder.norm.weight", "embed_norm.bias": "context_encoder.norm.bias"}
    key = FAIRSEQ_PREFIX + fs[name] if name in fs else name
    return ("model." + key) if fine_tuned and not name.startswith(("fc_norm.", "head.")) else key


def _dropped_groups(keys: list) -> list:
    """The dropped source keys as groups with counts: '_ema (…) 200 tensors', …"""
    groups: dict[str, int] = {}
    for k in keys:
        k = k[len("model."):] if k.startswith("model.") else k
        g = next((p.rstrip(".") for p in _FAIRSEQ_DROPPED if k.startswith(p)), k)
        groups[g] = groups.get(g, 0) + 1
    label = {"_ema": "the EMA teacher", FAIRSEQ_PREFIX + "decoder": "the CNN decoder"}
    return [f"{label.get(g, g)} ({g}, {n} tensors)" for g, n in groups.items()]
