#!/usr/bin/env bash
# Stage 1 of the DCASE2019 Task 1A recipe: evaluation_setup/fold1_{train,evaluate}.csv + meta.csv + audio/ ->
# data/train, data/valid (whole recording locations carved from fold1_train), data/test (= fold1_evaluate).
set -euo pipefail
. ./path.sh
. ./db.sh  # corpus roots

db_root=$DCASE2019_TASK1A   # corpus root: audio/, meta.csv, evaluation_setup/
nj=4                        # threads reading audio headers
data=data                   # output folder of the data directories
valid_fraction=0.1          # share of each scene's recording locations held out for validation

help_message="Usage: $0 [options]
Writes $data/train, $data/valid and $data/test from the TAU Urban Acoustic Scenes 2019 development set.
e.g.: $0 --db_root /data/TAU-urban-acoustic-scenes-2019-development
Options:
  --db_root DIR          corpus root (default from db.sh: $db_root)
  --nj N                 threads reading audio headers (default $nj)
  --data DIR             output folder (default $data)
  --valid_fraction F     share of each scene's locations in fold1_train used for validation (default $valid_fraction)"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; fi

# The reader checks --db_root (empty: the db.sh variable is unset; not a directory) and the corpus files.
python -m maskspec.data.corpora.dcase2019 --db_root "$db_root" --out_dir "$data" --nj "$nj" \
  --valid_fraction "$valid_fraction"
for set in train valid test; do utils/validate_data_dir.sh --no-feats "$data/$set"; done
