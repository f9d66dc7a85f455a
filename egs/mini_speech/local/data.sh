#!/usr/bin/env bash
# Generates the mini speech corpus (local/generate_speech.py) and writes the data directories
#   data/pretrain<suffix>  unlabelled utterances for pre-training (no text)
#   data/train<suffix>     transcribed utterances for CTC fine-tuning
#   data/valid<suffix>, data/test<suffix>
# then checks each with utils/validate_data_dir.sh. Audio goes to downloads/<set><suffix>/.
set -euo pipefail

log() {
  echo "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}:${BASH_LINENO[0]}) $*" >&2
}

quick=false        # true: a smaller corpus (for tests and a first look)
seed=0             # corpus seed: utterance i of a set depends only on (seed, set, i)
suffix=""          # appended to every set name, e.g. _quick
num_pretrain=3000  # unlabelled utterances (600 with --quick true)
num_train=600      # transcribed training utterances (400 with --quick true)
num_valid=100      # validation utterances (50 with --quick true)
num_test=300       # test utterances (100 with --quick true)
audio_dir=downloads
data_dir=data

help_message="Usage: $0 [--quick true] [--seed N] [--suffix S]
Generates the mini speech corpus into $audio_dir/ and $data_dir/{pretrain,train,valid,test}<suffix>.
e.g.: $0 --quick true --suffix _quick
Options: --quick ($quick) --seed ($seed) --suffix ('$suffix') --num_pretrain ($num_pretrain)
  --num_train ($num_train) --num_valid ($num_valid) --num_test ($num_test) --audio_dir ($audio_dir) --data_dir ($data_dir)"

. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; }
. ./path.sh

if [ "$quick" = true ]; then
  num_pretrain=600
  num_train=400
  num_valid=50
  num_test=100
fi

log "generating the mini speech corpus (seed $seed): $num_pretrain/$num_train/$num_valid/$num_test pretrain/train/valid/test utterances"
python local/generate_speech.py --audio_dir "$audio_dir" --data_dir "$data_dir" --suffix "$suffix" --seed "$seed" \
  --sets "pretrain:$num_pretrain" "train:$num_train" "valid:$num_valid" "test:$num_test"

utils/validate_data_dir.sh --no-feats --no-labels "$data_dir/pretrain$suffix"
for x in train valid test; do
  utils/validate_data_dir.sh --no-feats --no-labels "$data_dir/$x$suffix"
done
log "done: $data_dir/{pretrain,train,valid,test}$suffix"
