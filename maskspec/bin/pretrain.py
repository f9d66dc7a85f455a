"""Self-supervised pre-training of a MaskSpec model (recipe stage 3).

e.g.:
  python -m maskspec.bin.pretrain --config conf/pretrain_base.yaml \\
      --train_data dump/fbank/train --valid_data dump/fbank/valid --exp_dir exp/pretrain_base
  torchrun --nproc_per_node 8 -m maskspec.bin.pretrain --config conf/pretrain_base.yaml ...

Reads <train_data>/feats.scp, <train_data>/stats.json (or --stats) and <train_data>/fbank.yaml (kept in the
checkpoints and the model file). Writes in --exp_dir: config.yaml (every resolved option; valid as --config),
train.log, checkpoints/ (ckpt_e*_s*.pt, best.pt = lowest validation loss), tensorboard/, images/epoch_XXX.png,
and at the end model.pt, a model file (kind "pretrain", weights after the last step) for fine-tuning
(--init) and the embedding tools. Rerunning continues from the newest valid checkpoint (--resume true).
Exit status 0 on success, 1 on an error (message on stderr), 2 on bad options.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Optional, Sequence

PROG = "maskspec.bin.pretrain"
# Model options that may be given one by one; None = take the value from --model / --model_conf.
MODEL_OVERRIDES = (("patch_size", int), ("num_frames", int), ("embed_dim", int), ("depth", int),
                   ("num_heads", int), ("mlp_ratio", float), ("decoder_embed_dim", int), ("decoder_depth", int),
                   ("decoder_num_heads", int), ("mask_ratio", float), ("drop_path", float))

logger = logging.getLogger("maskspec.pretrain")


def build_parser():
    from maskspec.features.normalize import NORMALIZE_MODES
    from maskspec.train.config import StrictArgumentParser, add_training_args, str2bool, str_or_none, yaml_dict

    p = StrictArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("data")
    g.add_argument("--train_data", required=True, help="data directory with feats.scp (and stats.json, fbank.yaml)")
    g.add_argument("--valid_data", type=str_or_none, default=None, help="validation data directory (none: skip)")
    g.add_argument("--exp_dir", required=True, help="output folder")
    g.add_argument("--stats", type=str_or_none, default=None, help="stats.json (default <train_data>/stats.json)")
    g.add_argument("--normalize", default="per_bin", choices=NORMALIZE_MODES, help="feature standardisation")
    g.add_argument("--valid_batch_size", type=int, default=0, help="validation batch size (0: --batch_size)")
    g.add_argument("--num_images", type=int, default=4, help="validation clips plotted per epoch (0: none)")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="base", help="size: tiny, small, base (or vit_<size>_patch<P>)")
    m.add_argument("--model_conf", type=yaml_dict, default={}, help="model fields as YAML/JSON, e.g. '{depth: 2}'")
    for name, typ in MODEL_OVERRIDES:
        m.add_argument(f"--{name}", type=typ, default=None, help=f"override the model's {name}")
    m.add_argument("--norm_pix_loss", type=str2bool, default=None, help="per-patch normalised targets")
    add_training_args(p)
    # the paper's pre-training settings (maskspec-paper.md); batch_size is per GPU
    p.set_defaults(epochs=400, warmup_epochs=40, base_lr=1e-3, weight_decay=0.05, betas=[0.9, 0.95], batch_size=64)
    return p


def resolve_model(args, num_mel_bins: int):
    """ModelConfig from --model < --model_conf < explicit options; writes the resolved values back into args."""
    from maskspec.models.configs import training_model_config

    names = [n for n, _ in MODEL_OVERRIDES] + ["norm_pix_loss"]
    cfg = training_model_config(args.model, args.model_conf, {n: getattr(args, n) for n in names}, num_mel_bins,
                                args.train_data)
    for n in names:
        setattr(args, n, getattr(cfg, n))
    return cfg


def run(args) -> int:
    from maskspec.data.dataset import FeatDataset, collate
    from maskspec.data.feats import load_feat
    from maskspec.models.maskspec import MaskSpecModel
    from maskspec.models.model_file import save_model_file
    from maskspec.models.summary import count_parameters
    from maskspec.tasks.pretrain import PretrainTask
    from maskspec.train import distributed as D
    from maskspec.train.cli import load_input_stats, read_fbank_config
    from maskspec.train.config import resolve_training_args, save_config
    from maskspec.train.logs import setup_logging
    from maskspec.train.optim import param_groups
    from maskspec.train.rng import seed_everything
    from maskspec.train.trainer import Trainer

    dist_info = D.init_distributed(args.device)
    try:
        setup_logging(os.path.join(args.exp_dir, "train.log"), dist_info.is_main, dist_info.rank)
        resolve_training_args(args, dist_info.world_size, dist_info.device.type)
        if args.valid_batch_size < 0 or args.num_images < 0:
            raise ValueError("--valid_batch_size and --num_images must not be negative")
        stats = load_input_stats(args)
        fbank = read_fbank_config(args.train_data, required=False)
        train_set = FeatDataset(args.train_data, None, stats, args.normalize, crop="random", seed=args.seed)
        num_mel_bins = len(stats["mean"]) if stats else load_feat(train_set.specs[0]).shape[1]
        cfg = resolve_model(args, num_mel_bins)
        train_set.num_frames = cfg.num_frames
        valid_set = (FeatDataset(args.valid_data, cfg.num_frames, stats, args.normalize, crop="start")
                     if args.valid_data else None)
        if dist_info.is_main:
            save_config(args, os.path.join(args.exp_dir, "config.yaml"))
        logger.info("command: %s", " ".join(sys.argv))
        logger.info("%d processes, device %s; train %d clips (%s), valid %s", dist_info.world_size,
                    dist_info.device, len(train_set), args.train_data,
                    f"{len(valid_set)} clips ({args.valid_data})" if valid_set else "none")

        seed_everything(args.seed)  # identical initial weights on every rank
        model = MaskSpecModel(cfg)
        enc, total = count_parameters(model.encoder), count_parameters(model)
        logger.info("model: %s", cfg.to_dict())
        logger.info("parameters: encoder %.2fM, decoder %.2fM, total %.2fM (%d trainable)", enc / 1e6,
                    (total - enc) / 1e6, total / 1e6, count_parameters(model, trainable_only=True))
        sampler = D.DistributedShuffleSampler(len(train_set), seed=args.seed, rank=dist_info.rank,
                                              world_size=dist_info.world_size, shuffle=True, drop_last=True)
        metadata = dict(kind="pretrain", model_config=cfg.to_dict(), fbank_config=fbank, stats=stats,
                        normalize=args.normalize, num_frames=cfg.num_frames)
        trainer = Trainer(model=model, task=PretrainTask(valid_set, args.num_images), train_dataset=train_set,
                          train_sampler=sampler, collate_fn=collate,
                          param_groups=param_groups(model, args.weight_decay),
                          args=args, exp_dir=args.exp_dir, dist_info=dist_info, valid_dataset=valid_set,
                          metadata=metadata, best_metric="loss" if valid_set else None, best_mode="min",
                          valid_batch_size=args.valid_batch_size or None)
        result = trainer.fit()
        if dist_info.is_main:
            path = os.path.join(args.exp_dir, "model.pt")
            save_model_file(path, kind="pretrain", model_config=cfg, state_dict=model.state_dict(),
                            fbank_config=fbank, stats=stats, normalize=args.normalize, classes=None,
                            task_type=None, num_frames=cfg.num_frames,
                            extra=dict(step=result["step"], valid=result["valid"]))
            logger.info("done after %d steps; wrote %s", result["step"], path)
        D.barrier()
    finally:
        D.cleanup()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from maskspec.train.cli import run_main

    return run_main(PROG, build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
