#!/usr/bin/env python3
"""Pre-training throughput of MaskSpecModel against a reference MAE of the same size, in one run.

The reference is a separate, minimal MAE (fixed sin-cos positions held in a buffer, argsort masking, the same
loss) whose transformer layers are timm's `vision_transformer.Block`; without timm it uses torch's
`nn.TransformerEncoderLayer(norm_first=True)` and the table says so. Both train on the same random batch with
AdamW, so the ratio compares whole training steps.

Reported per model: training clips/s and masked views/s (``--num_masks 1 4``: MaskSpecModel also with 4 views
of each clip, one patch embedding and one target computation shared by them; ``--bootstrap_masks 1 16``: the
bootstrap objective with EAT's settings, whose clips/s include the EMA teacher's forward pass), peak memory (CUDA
max_memory_allocated; n/a on CPU) and MFU = achieved model FLOPs / peak FLOPs. Model FLOPs per clip are
counted analytically (maskspec.models.flops: the patch embedding once, then per view the encoder on
1 + L_keep tokens and the decoder on 1 + L tokens; forward + backward = 3 x forward). Peak FLOPs come from
--peak_tflops (989 = H100 SXM bf16 dense); MFU is n/a on CPU.

e.g.: python benchmarks/pretrain_throughput.py --size base --batch_size 64 --steps 30 --compile
      python benchmarks/pretrain_throughput.py --device cpu --size tiny --batch_size 8 --steps 5
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from functools import partial

import torch
from torch import nn

from maskspec.models.bootstrap import BootstrapModel
from maskspec.models.configs import ModelConfig, model_config
from maskspec.models.flops import pretrain_flops_per_clip
from maskspec.models.masking import num_keep
from maskspec.models.maskspec import MaskSpecModel, patch_targets
from maskspec.models.pos_embed import sincos_2d
from maskspec.models.summary import count_parameters

# The full 992-frame input takes tens of seconds per tiny-model step on a small CPU; a CPU run only checks
# that both models train and the table prints, so it defaults to a short input.
CPU_NUM_FRAMES = 64
# EAT's AS-2M CNN decoder (config/pretraining_AS2M.yaml: decoder_dim 768, decoder_layers 6), for --bootstrap_masks
EAT_DECODER = (768, 6)


def reference_block_factory():
    """(factory(dim, heads, mlp_ratio) -> [B, N, D] module, label) from timm if importable, else torch."""
    try:
        from timm.models.vision_transformer import Block

        return (lambda d, h, r: Block(d, h, r, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6)),
                "timm ViT Block")
    except ImportError:
        return (lambda d, h, r: nn.TransformerEncoderLayer(d, h, int(d * r), dropout=0.0, activation="gelu",
                                                           batch_first=True, norm_first=True, layer_norm_eps=1e-6),
                "torch TransformerEncoderLayer, timm not installed")


class ReferenceMAE(nn.Module):
    """Textbook MAE on [B, T, F] spectrograms with pluggable blocks, for comparison only."""

    def __init__(self, cfg: ModelConfig, make_block, num_frames: int):
        super().__init__()
        p, d, dd = cfg.patch_size, cfg.embed_dim, cfg.decoder_embed_dim
        self.cfg, self.grid = cfg, (cfg.num_mel_bins // p, num_frames // p)
        self.patch_embed = nn.Conv2d(1, d, p, stride=p)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.register_buffer("pos", sincos_2d(d, *self.grid)[None], persistent=False)
        self.blocks = nn.Sequential(*(make_block(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.decoder_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.register_buffer("dec_pos", sincos_2d(dd, *self.grid)[None], persistent=False)
        self.decoder_blocks = nn.Sequential(
            *(make_block(dd, cfg.decoder_num_heads, cfg.mlp_ratio) for _ in range(cfg.decoder_depth)))
        self.decoder_norm = nn.LayerNorm(dd, eps=1e-6)
        self.decoder_pred = nn.Linear(dd, p * p)

    def forward(self, x: torch.Tensor):
        """x [B, T, F] -> (loss, pred [B, L, p*p], mask [B, L])."""
        tokens = self.patch_embed(x.transpose(1, 2).unsqueeze(1)).flatten(2).transpose(1, 2) + self.pos
        b, n, d = tokens.shape
        keep = num_keep(n, self.cfg.mask_ratio)
        ids_shuffle = torch.rand(b, n, device=x.device).argsort(1)
        ids_restore = ids_shuffle.argsort(1)
        tokens = tokens.gather(1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
        tokens = torch.cat([self.cls_token.expand(b, -1, -1).to(tokens.dtype), tokens], 1)
        y = self.decoder_embed(self.norm(self.blocks(tokens)))
        dd = y.shape[-1]
        patches = torch.cat([y[:, 1:], self.mask_token.to(y.dtype).expand(b, n - keep, -1)], 1)
        patches = patches.gather(1, ids_restore[..., None].expand(-1, -1, dd)) + self.dec_pos
        pred = self.decoder_pred(self.decoder_norm(self.decoder_blocks(torch.cat([y[:, :1], patches], 1))))[:, 1:]
        mask = (ids_restore >= keep).float()
        target, _, _ = patch_targets(x, self.cfg.patch_size, self.cfg.norm_pix_loss)
        loss = (((pred.float() - target) ** 2).mean(-1) * mask).sum() / mask.sum()
        return loss, pred, mask


def measure(model: nn.Module, x: torch.Tensor, args, amp: bool) -> dict:
    """Train `model` on x for warmup + steps AdamW steps; samples/s, peak GiB and compile status."""
    device = x.device
    model.to(device).train()
    # fused: one kernel per step on CPU and CUDA, so the optimiser does not dominate small-model timings
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, fused=True)
    run, compiled = model, "no"
    if args.compile:
        run, compiled = torch.compile(model, backend=args.compile_backend), "yes"

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = run(x)
            loss = out["loss"] if isinstance(out, dict) else out[0]  # BootstrapModel returns a dict
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(args.warmup):
        try:
            step()
        except Exception as e:  # noqa: BLE001 - a compile failure should not hide the eager numbers
            if run is model or i > 0:
                raise
            print(f"{sys.argv[0]}: torch.compile failed ({type(e).__name__}: {e}); measuring eager",
                  file=sys.stderr)
            run, compiled = model, "failed"
            opt.zero_grad(set_to_none=True)
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    model.to("cpu")
    return dict(samples_per_s=args.batch_size * args.steps / elapsed, peak_gib=peak, compiled=compiled,
                params=count_parameters(model))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="base", help="model size: tiny | small | base (or vit_<size>_patch16)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps first (compilation, allocator); default 3 on CUDA or with --compile "
                             "(the positions cache adds one recompile), else 1")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default=None,
                        help="bf16 autocast or fp32 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--compile", action="store_true", help="wrap both models in torch.compile")
    parser.add_argument("--compile_backend", default="inductor",
                        help="torch.compile backend (aot_eager: graph capture only, for a quick CPU check)")
    parser.add_argument("--num_frames", type=int, default=None,
                        help=f"input frames; default the config's {ModelConfig.num_frames} on CUDA and "
                             f"{CPU_NUM_FRAMES} on CPU, where the run is a smoke test of the table")
    parser.add_argument("--peak_tflops", type=float, default=989.0,
                        help="peak dense TFLOP/s of one device for MFU (989: H100 SXM bf16)")
    parser.add_argument("--num_masks", type=int, nargs="+", default=[1],
                        help="views per clip of our model, one table row each (the reference has 1)")
    parser.add_argument("--bootstrap_masks", type=int, nargs="*", default=[],
                        help="also the bootstrap objective (maskspec.models.bootstrap) with EAT's AS-2M settings "
                             "(CNN decoder 768 x 6 layers, kernel 3, 16 groups; inverse-block masks of 80 %%) at "
                             "these views per clip, one row each; its clips/s include the teacher's pass")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    prog = sys.argv[0]
    try:
        cfg = model_config(args.size)
    except ValueError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    if args.warmup is None:
        args.warmup = 3 if on_gpu or args.compile else 1
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0 or min(args.num_masks + args.bootstrap_masks) < 1:
        print(f"{prog}: --batch_size, --steps and --num_masks must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    if on_gpu and not torch.cuda.is_available():
        print(f"{prog}: --device {args.device} requested but CUDA is not available", file=sys.stderr)
        return 2
    dtype = args.dtype or ("bf16" if on_gpu else "fp32")
    num_frames = args.num_frames or (cfg.num_frames if on_gpu else CPU_NUM_FRAMES)
    if num_frames < cfg.patch_size:
        print(f"{prog}: --num_frames {num_frames} is shorter than one patch ({cfg.patch_size})", file=sys.stderr)
        return 2

    torch.manual_seed(args.seed)
    x = torch.randn(args.batch_size, num_frames, cfg.num_mel_bins, device=device)
    make_block, ref_label = reference_block_factory()
    # (label, views per clip, measurement); the first two rows are the like-for-like comparison
    rows = [("MaskSpecModel (ours)", 1, measure(MaskSpecModel(cfg), x, args, dtype == "bf16")),
            (f"reference MAE, {ref_label}", 1,
             measure(ReferenceMAE(cfg, make_block, num_frames), x, args, dtype == "bf16"))]
    configs = [cfg, cfg]  # the model config of each row, for its FLOPs
    for k in sorted(set(args.num_masks) - {1}):
        configs.append(dataclasses.replace(cfg, num_masks=k))
        rows.append((f"MaskSpecModel (ours), {k} views", k, measure(MaskSpecModel(configs[-1]), x, args,
                                                                    dtype == "bf16")))
    for k in sorted(set(args.bootstrap_masks)):
        configs.append(model_config(cfg, objective="bootstrap", decoder_type="cnn", decoder_embed_dim=EAT_DECODER[0],
                                    decoder_depth=EAT_DECODER[1], decoder_num_heads=16, decoder_kernel=3,
                                    decoder_groups=16, mask_ratio=0.8, mask_type="inverse_block", num_masks=k,
                                    target_top_k=cfg.depth))
        rows.append((f"bootstrap (EAT settings), {k} view{'s' if k > 1 else ''}", k,
                     measure(BootstrapModel(configs[-1]), x, args, dtype == "bf16")))

    name = torch.cuda.get_device_name(device) if on_gpu else "CPU"
    grid = (cfg.num_mel_bins // cfg.patch_size, num_frames // cfg.patch_size)
    print(f"device {name}, dtype {dtype}, torch {torch.__version__}, size {args.size} "
          f"({cfg.embed_dim}d x {cfg.depth}, decoder {cfg.decoder_embed_dim}d x {cfg.decoder_depth}), "
          f"input {num_frames} frames x {cfg.num_mel_bins} mel = {grid[0] * grid[1]} patches, mask ratio "
          f"{cfg.mask_ratio}, batch {args.batch_size}, {args.warmup} warm-up + {args.steps} timed steps")
    print(f"model FLOPs per training clip: {pretrain_flops_per_clip(cfg, num_frames, 1) / 1e9:.1f} GFLOP with one "
          f"view (analytic; peak {args.peak_tflops:g} TFLOP/s)")
    w = max(len(label) for label, _, _ in rows)
    header = (f"| {'model':<{w}} | {'params':>8} | {'compiled':>8} | {'clips/s':>10} | {'views/s':>10} | "
              f"{'peak mem':>9} | {'MFU':>6} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for (label, k, r), row_cfg in zip(rows, configs):
        mem = f"{r['peak_gib']:.2f} GiB" if r["peak_gib"] is not None else "n/a"
        flops = pretrain_flops_per_clip(row_cfg, num_frames, k)
        mfu = f"{100 * r['samples_per_s'] * flops / (args.peak_tflops * 1e12):.1f}%" if on_gpu else "n/a"
        print(f"| {label:<{w}} | {r['params'] / 1e6:7.2f}M | {r['compiled']:>8} | {r['samples_per_s']:10.1f} | "
              f"{r['samples_per_s'] * k:10.1f} | {mem:>9} | {mfu:>6} |")
    ours, ref = rows[0][2], rows[1][2]
    mem_ratio = f"{ours['peak_gib'] / ref['peak_gib']:.2f}x" if on_gpu else "n/a"
    print(f"| {'ratio ours / reference':<{w}} | {'':>8} | {'':>8} | "
          f"{ours['samples_per_s'] / ref['samples_per_s']:9.2f}x | {'':>10} | {mem_ratio:>9} | {'':>6} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
