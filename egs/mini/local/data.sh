#!/usr/bin/env bash
# Generates the mini corpus (local/generate_corpus.py) and writes the data directories
#   data/pretrain<suffix>  unlabelled clips for pre-training
#   data/train<suffix>     a few labelled clips per class for fine-tuning
#   data/valid<suffix>, data/test<suffix>
# then checks each with utils/validate_data_dir.sh. Audio goes to downloads/<set><suffix>/.
set -euo pipefail

log() {
  echo "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}:${BASH_LINENO[0]}) $*" >&2
}

quick=false        # true: a smaller corpus (for tests and a first look)
seed=0             # corpus seed: clip i of a set depends only on (seed, set, i)
suffix=""          # appended to every set name, e.g. _quick
num_pretrain=3000  # unlabelled clips (400 with --quick true)
train_per_class=8  # labelled training clips per class (10 classes)
valid_per_class=20 # validation clips per class (10 with --quick true)
test_per_class=50  # test clips per class (20 with --quick true)
audio_dir=downloads
data_dir=data

help_message="Usage: $0 [--quick true] [--seed N] [--suffix S]
Generates the mini corpus into $audio_dir/ and $data_dir/{pretrain,train,valid,test}<suffix>.
e.g.: $0 --quick true --suffix _quick
Options: --quick ($quick) --seed ($seed) --suffix ('$suffix') --num_pretrain ($num_pretrain)
  --train_per_class ($train_per_class) --valid_per_class ($valid_per_class) --test_per_class ($test_per_class)
  --audio_dir ($audio_dir) --data_dir ($data_dir)"

. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; }
. ./path.sh

if [ "$quick" = true ]; then
  num_pretrain=400
  valid_per_class=10
  test_per_class=20
fi

log "generating the mini corpus (seed $seed): $num_pretrain pre-training clips, $train_per_class/$valid_per_class/$test_per_class train/valid/test clips per class"
python local/generate_corpus.py --audio_dir "$audio_dir" --data_dir "$data_dir" --suffix "$suffix" --seed "$seed" \
  --sets "pretrain:$num_pretrain" "train:$train_per_class" "valid:$valid_per_class" "test:$test_per_class"

utils/validate_data_dir.sh --no-feats --no-labels "$data_dir/pretrain$suffix"
for x in train valid test; do
  utils/validate_data_dir.sh --no-feats "$data_dir/$x$suffix"
done
log "done: $data_dir/{pretrain,train,valid,test}$suffix"
