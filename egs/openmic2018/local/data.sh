#!/usr/bin/env bash
# Stage 1 of the OpenMIC-2018 recipe: openmic-2018.npz + class-map.json + partitions/split01_{train,test}.csv
# + audio/<key[:3]>/<key>.ogg -> data/{train,valid,test} with partial labels (utt2label_known).
# valid = the --valid_fraction of split01_train whose keys come first in MD5 order; train = the rest.
set -euo pipefail
. ./path.sh
. ./db.sh  # corpus roots

db_root=$OPENMIC   # corpus root: openmic-2018.npz, class-map.json, partitions/, audio/
nj=4                   # threads reading audio headers
data=data              # output folder of the data directories
valid_fraction=0.1     # share of split01_train held out for validation

help_message="Usage: $0 [options]
Writes $data/train, $data/valid and $data/test from OpenMIC-2018 (split01).
e.g.: $0 --db_root /data/openmic-2018
Options:
  --db_root DIR          corpus root (default from db.sh: $db_root)
  --nj N                 threads reading audio headers (default $nj)
  --data DIR             output folder (default $data)
  --valid_fraction F     share of split01_train used for validation (default $valid_fraction)"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; fi

# The reader checks --db_root (empty: the db.sh variable is unset; not a directory) and the corpus files.
python -m maskspec.data.corpora.openmic --db_root "$db_root" --out_dir "$data" --nj "$nj" \
  --valid_fraction "$valid_fraction"
for set in train valid test; do utils/validate_data_dir.sh --no-feats "$data/$set"; done
