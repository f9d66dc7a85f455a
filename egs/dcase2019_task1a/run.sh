#!/usr/bin/env bash
# DCASE2019 Task 1A recipe: fine-tunes the AudioSet pre-trained encoder (stage 4) and scores the test set (stage 5).
# Stage 3 is skipped: the encoder comes from --init (--init "" --pretrain_set train pre-trains on this corpus).
# Options are those of ../TEMPLATE/maskspec.sh; the values below are defaults, the command line overrides them.
set -euo pipefail
. "$(dirname "$0")/../TEMPLATE/scripts/recipe.sh"

run_recipe "DCASE2019 Task 1A recipe.
Sets (local/data.sh): train, valid (whole locations carved from fold1_train), test (fold1_evaluate).
--pretrain_config is used only when pre-training here, with --init ''.
Corpus root: DCASE2019_TASK1A in db.sh, or --local_data_opts '--db_root DIR'.
e.g.: ./run.sh --ngpu 1
      ./run.sh --init ../audioset/exp/finetune_default/pretrained/model.pt --tag as2m   # AS-2M fine-tuned first" \
  --train_set train --valid_set valid --test_sets test --pretrain_set train \
  --init ../audioset/exp/pretrain_base/model.pt --pretrain_config ../audioset/conf/pretrain_base.yaml \
  -- "$@"
