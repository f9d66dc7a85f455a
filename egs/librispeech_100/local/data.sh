#!/usr/bin/env bash
# Stage 1 of the LibriSpeech recipe: LibriSpeech/<subset>/<speaker>/<chapter>/*.flac and
# <speaker>-<chapter>.trans.txt -> data/{train_clean_100,dev_clean,dev_other,test_clean,test_other} with wav.scp,
# utt2dur, utt2spk and text. Subsets the corpus folder does not hold are skipped and named (e.g. only
# train-clean-100, dev-clean and test-clean: run the recipe with --test_sets test_clean).
set -euo pipefail
. ./path.sh
. ./db.sh  # corpus roots

db_root=$LIBRISPEECH  # the folder holding LibriSpeech/ (where the openslr.org/12 archives were unpacked)
subsets="train-clean-100 dev-clean dev-other test-clean test-other"
nj=4                  # threads reading audio headers
data=data             # output folder of the data directories

help_message="Usage: $0 [options]
Writes one data directory per LibriSpeech subset into $data/ (train-clean-100 -> $data/train_clean_100).
e.g.: $0 --db_root /data/librispeech
Options:
  --db_root DIR    folder holding LibriSpeech/ (default from db.sh: $db_root)
  --subsets LIST   subsets to prepare (default: $subsets)
  --nj N           threads reading audio headers (default $nj)
  --data DIR       output folder (default $data)"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; fi

# The reader checks --db_root (empty: the db.sh variable is unset; not a directory) and the corpus files.
# shellcheck disable=SC2086
python -m maskspec.data.corpora.librispeech --db_root "$db_root" --out_dir "$data" --nj "$nj" --subsets $subsets \
  --skip_missing true
skipped=$(cat "$data/skipped_subsets")
for subset in $subsets; do
  case " $(echo $skipped) " in *" $subset "*) continue ;; esac
  utils/validate_data_dir.sh --no-feats --no-labels "$data/${subset//-/_}"
done
if [ -n "$skipped" ]; then
  echo "$0: skipped $(echo $skipped): not in the corpus folder; leave their sets out of the recipe's --test_sets" \
    "(e.g. --test_sets test_clean)" >&2
fi
