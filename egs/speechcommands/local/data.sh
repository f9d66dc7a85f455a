#!/usr/bin/env bash
# Stage 1 of the Speech Commands V2 recipe: word folders + validation_list.txt/testing_list.txt ->
# data/{train,valid,test} (35 words, utt2spk) and data/background_noise (noise for augmentation, no labels).
set -euo pipefail
. ./path.sh
. ./db.sh  # corpus roots

db_root=$SPEECHCOMMANDS   # corpus root: <word>/, validation_list.txt, testing_list.txt, _background_noise_/
nj=4                      # threads reading audio headers
data=data                 # output folder of the data directories

help_message="Usage: $0 [options]
Writes $data/train, $data/valid, $data/test and $data/background_noise from Speech Commands.
e.g.: $0 --db_root /data/speech_commands_v0.02
Options:
  --db_root DIR   corpus root (default from db.sh: $db_root)
  --nj N          threads reading audio headers (default $nj)
  --data DIR      output folder (default $data)"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; fi

# The reader checks --db_root (empty: the db.sh variable is unset; not a directory) and the corpus files.
python -m maskspec.data.corpora.speechcommands --db_root "$db_root" --out_dir "$data" --nj "$nj"
for set in train valid test; do utils/validate_data_dir.sh --no-feats "$data/$set"; done
if [ -d "$data/background_noise" ]; then utils/validate_data_dir.sh --no-feats --no-labels "$data/background_noise"; fi
