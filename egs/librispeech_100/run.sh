#!/usr/bin/env bash
# LibriSpeech 100 h recipe: speech recognition with the MaskSpec encoder, CTC over sentencepiece units.
# Stage 1 prepares the five subsets and the BPE token list of train_clean_100, stage 4 fine-tunes the encoder
# (from --init, by default the AudioSet pre-training) with CTC, stage 5 decodes and scores WER/CER on the dev and
# test sets. Options are those of ../TEMPLATE/maskspec.sh; the values below are defaults, the command line
# overrides them.
set -euo pipefail
. "$(dirname "$0")/../TEMPLATE/scripts/recipe.sh"

run_recipe "LibriSpeech 100 h recipe (CTC, sentencepiece unigram units).
Corpus root: LIBRISPEECH in db.sh (the folder holding LibriSpeech/), or --local_data_opts '--db_root DIR'.
Pre-training on the speech itself instead of AudioSet: --init '' --pretrain_set train_clean_100
--pretrain_valid_set dev_clean (stage 3 with conf/pretrain_speech.yaml: 128 x 4 frame patches, 75 % masked).
A corpus folder holding only some subsets: the others are skipped (named); give --test_sets accordingly.
A training text too small for --nbpe 300 pieces gets the most it holds (--nbpe_fallback true).
e.g.: ./run.sh --ngpu 4
      ./run.sh --ngpu 4 --init '' --pretrain_set train_clean_100 --pretrain_valid_set dev_clean --tag speech_pt
      ./run.sh --test_sets test_clean                 # only train-clean-100, dev-clean and test-clean unpacked
      ./run.sh --stage 5 --score_args '--beam_size 8'" \
  --train_set train_clean_100 --valid_set dev_clean --test_sets "dev_clean dev_other test_clean test_other" \
  --token_type bpe --nbpe 300 --bpemode unigram --nbpe_fallback true \
  --init ../audioset/exp/pretrain_base/model.pt \
  --pretrain_config conf/pretrain_speech.yaml \
  --finetune_config conf/finetune_ctc.yaml \
  -- "$@"
