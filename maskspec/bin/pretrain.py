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

import sys
from typing import Optional, Sequence

PROG = "maskspec.bin.pretrain"


def build_parser():
    from maskspec.features.normalize import NORMALIZE_MODES
    from maskspec.train.config import StrictArgumentParser, add_training_args, str_or_none, yaml_dict
    from maskspec.train.model_options import add_model_field_options

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
    add_model_field_options(m)  # --patch_size, --depth, --mask_ratio, ...: one per ModelConfig field
    add_training_args(p)
    # the paper's pre-training settings (maskspec-paper.md); batch_size is per GPU
    p.set_defaults(epochs=400, warmup_epochs=40, base_lr=1e-3, weight_decay=0.05, betas=[0.9, 0.95], batch_size=64)
    return p


def run(args) -> int:
    from maskspec.tasks.pretrain_run import PretrainRecipe
    from maskspec.train.run import run_training

    return run_training(args, PretrainRecipe())


def main(argv: Optional[Sequence[str]] = None) -> int:
    from maskspec.utils.cli import run_main

    return run_main(PROG, build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
