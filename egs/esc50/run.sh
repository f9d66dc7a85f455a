#!/usr/bin/env bash
# ESC-50 recipe: fine-tunes the AudioSet pre-trained encoder on each of the five folds (stage 4), scores each
# held-out fold and averages the five accuracies (stage 5). Stage 3 is skipped: the encoder comes from --init.
# Options are those of ../TEMPLATE/maskspec.sh; the values below are defaults, the command line overrides them.
set -euo pipefail
. "$(dirname "$0")/../TEMPLATE/scripts/recipe.sh"

run_recipe "ESC-50 recipe (5-fold cross-validation).
Validation of each fold is its test fold, for monitoring only: conf/finetune.yaml keeps the last epoch's weights.
Pre-training here (--init '', with --pretrain_config) runs once: name its sets, e.g. --pretrain_set train_fold1
--pretrain_valid_set test_fold1 (folds 2-5 then pre-train, so their test clips are seen, unlabelled, before
they are scored). Each clip is in five sets (one test, four training folds); stage 2 computes its features once.
Corpus root: ESC50 in db.sh, or --local_data_opts '--db_root DIR'.
e.g.: ./run.sh --ngpu 1
      ./run.sh --init ../audioset/exp/finetune_default/pretrained/model.pt --tag as2m   # AS-2M fine-tuned first" \
  --folds "1 2 3 4 5" \
  --train_set "train_fold{fold}" --valid_set "test_fold{fold}" --test_sets "test_fold{fold}" \
  --init ../audioset/exp/pretrain_base/model.pt \
  --pretrain_config ../audioset/conf/pretrain_base.yaml \
  -- "$@"
