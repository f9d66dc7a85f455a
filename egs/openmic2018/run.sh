#!/usr/bin/env bash
# OpenMIC-2018 recipe: fine-tunes the AudioSet pre-trained encoder (stage 4) and scores the test set (stage 5).
# Stage 3 is skipped: the encoder comes from --init (--init "" --pretrain_set train pre-trains on this corpus).
# Options are those of ../TEMPLATE/maskspec.sh; the values below are defaults, the command line overrides them.
set -euo pipefail

recipe_help="OpenMIC-2018 recipe. Defaults set by run.sh (override any on the command line):
  --train_set train --valid_set valid --test_sets test --pretrain_set train
  --init ../audioset/exp/pretrain_base/model.pt --fbank_config conf/fbank.yaml --finetune_config conf/finetune.yaml
  --pretrain_config ../audioset/conf/pretrain_base.yaml (used only when pre-training here, with --init '')
Sets (local/data.sh): train, valid (carved from split01_train), test (split01_test); partial labels.
Corpus root: OPENMIC in db.sh, or --local_data_opts '--db_root DIR'.
e.g.: ./run.sh --ngpu 1
      ./run.sh --init ../audioset/exp/finetune_default/pretrained/model.pt --tag as2m   # AS-2M fine-tuned first"
case " $* " in
  *" --help "* | *" -h "*) printf '%s\n\n' "$recipe_help"; exec ./maskspec.sh --help ;;
esac

./maskspec.sh \
  --train_set train \
  --valid_set valid \
  --test_sets test \
  --pretrain_set train \
  --init ../audioset/exp/pretrain_base/model.pt \
  --fbank_config conf/fbank.yaml \
  --pretrain_config ../audioset/conf/pretrain_base.yaml \
  --finetune_config conf/finetune.yaml \
  "$@"
