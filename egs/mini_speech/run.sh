#!/usr/bin/env bash
# Mini speech recipe: CTC speech recognition with the MaskSpec encoder on generated speech-like audio (a 16-word
# vocabulary of consonant-vowel syllables), a tiny transformer on CPU: data, fbank, character token list,
# pre-training on the untranscribed utterances, CTC fine-tuning from it and from scratch, WER/CER scoring.
# See README.md.
set -euo pipefail

quick=false  # true: fewer utterances and epochs, under 4 minutes on 2 CPU cores (what the tests run)
seed=0       # corpus and training seed; sets and experiments get the suffix _seed<N> unless it is 0

# --quick and --seed are this script's; every other option goes to maskspec.sh (see ./maskspec.sh --help).
. "$(dirname "$0")/../TEMPLATE/scripts/recipe.sh"
recipe_quick_seed "fewer utterances and epochs" "$@"

# One thread per process: the tiny model gains little from more, and loses much when the cores are shared.
export OMP_NUM_THREADS=1

suffix=""
pretrain_args="--seed $seed"
finetune_args="--seed $seed"
if [ "$quick" = true ]; then
  suffix=_quick
  pretrain_args+=" --epochs 20 --warmup_epochs 2 --batch_size 16 --lr 1e-3"
  finetune_args+=" --epochs 16 --warmup_epochs 1"
fi
[ "$seed" -eq 0 ] || suffix+=_seed$seed

./maskspec.sh \
  --local_data_opts "--quick $quick --seed $seed${suffix:+ --suffix $suffix}" \
  --nj 2 \
  --fbank_config conf/fbank.yaml \
  --token_type char --token_listdir "data/token_list$suffix" \
  --pretrain_set "pretrain$suffix" --pretrain_valid_set "valid$suffix" \
  --train_set "train$suffix" --valid_set "valid$suffix" --test_sets "test$suffix" \
  --pretrain_config conf/pretrain_mini_speech.yaml --pretrain_args "$pretrain_args" --pretrain_tag "mini_speech$suffix" \
  --finetune_config conf/finetune_ctc_mini.yaml --finetune_args "$finetune_args" --tag "ctc$suffix" \
  --scratch_baseline true \
  ${recipe_args[@]+"${recipe_args[@]}"}
