#!/usr/bin/env bash
# AudioSet recipe: MaskSpec pre-training on the AS-2M audio (stage 3, the checkpoint every other recipe
# fine-tunes from), then fine-tuning and scoring on AS-2M (default) or AS-20K. Stages and options are those
# of ../TEMPLATE/maskspec.sh; the values below are this recipe's defaults, and the command line overrides them.
set -euo pipefail
. "$(dirname "$0")/../TEMPLATE/scripts/recipe.sh"

run_recipe "AudioSet recipe.
Sets (local/data.sh): balanced_train (AS-20K), train_2m (AS-2M = balanced + unbalanced), eval, pretrain.
--feats_dtype float16 halves the features of AS-2M (~0.53 TB instead of ~1.07 TB); stage 2 checks the free space
first (--check_space false skips). AS-2M also needs, per fine-tuning rank, ~0.26 GB at start-up for the clip index,
labels and sampler (built in ~10 s) and up to 0.1 GB per loader worker: under 9 GB per 8-GPU node for the data
(README.md, section What AS-2M needs; benchmarks/scale.py).
Corpus root: AUDIOSET in db.sh, or --local_data_opts '--db_root DIR [--audio_dirs D1,D2]'.
e.g.: ./run.sh --ngpu 8                                   # all stages, AS-2M
      ./run.sh --stage 2 --train_set balanced_train --finetune_config conf/finetune_as20k.yaml   # AS-20K
      local/data.sh --help                                # audio lookup and the missing-audio report" \
  --pretrain_set train_2m --pretrain_valid_set eval \
  --train_set train_2m --valid_set eval --test_sets eval \
  --feats_dtype float16 \
  --pretrain_config conf/pretrain_base.yaml \
  -- "$@"
