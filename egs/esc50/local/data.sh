#!/usr/bin/env bash
# Stage 1 of the ESC-50 recipe: meta/esc50.csv + audio/*.wav -> data/train_fold{1..5} (the other four folds)
# and data/test_fold{1..5} (fold k), labels = the 50 category names in target order.
set -euo pipefail
. ./path.sh
. ./db.sh  # corpus roots

db_root=$ESC50   # corpus root: meta/esc50.csv, audio/
nj=4             # threads reading audio headers
data=data        # output folder of the data directories

help_message="Usage: $0 [options]
Writes $data/train_fold{1..5} and $data/test_fold{1..5} from the ESC-50 corpus.
e.g.: $0 --db_root /data/ESC-50-master
Options:
  --db_root DIR   corpus root (default from db.sh: $db_root)
  --nj N          threads reading audio headers (default $nj)
  --data DIR      output folder (default $data)"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; fi

# The reader checks --db_root (empty: the db.sh variable is unset; not a directory) and the corpus files.
python -m maskspec.data.corpora.esc50 --db_root "$db_root" --out_dir "$data" --nj "$nj"
for k in 1 2 3 4 5; do
  for set in train_fold$k test_fold$k; do utils/validate_data_dir.sh --no-feats "$data/$set"; done
done
