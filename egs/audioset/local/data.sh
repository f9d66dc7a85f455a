#!/usr/bin/env bash
# Stage 1 of the AudioSet recipe: the segment CSVs + your audio download -> data/balanced_train (AS-20K),
# data/train_2m (AS-2M = balanced + unbalanced), data/eval, data/pretrain (audio only). Segments without
# (readable) audio are skipped and listed in data/local/audioset_{missing,unreadable}_<set>.txt.
set -euo pipefail
. ./path.sh
. ./db.sh  # corpus roots

db_root=$AUDIOSET     # corpus root: class_labels_indices.csv, *_segments.csv, audio/
audio_dirs=""         # folders searched for audio, comma- or space-separated (default: <db_root>/audio)
name_patterns=""      # file name stems tried in order (default: see below)
audio_exts=""         # extensions tried in order (default: wav flac mp3 ogg opus)
sets="balanced_train,eval,train_2m,pretrain"   # sets to write
pretrain_extra=true   # add audio files outside the segment lists to data/pretrain
nj=8                  # threads reading audio headers
data=data             # output folder of the data directories

help_message="Usage: $0 [options]
Writes the AudioSet data directories ($sets) under $data.
Each segment's audio is looked up by file name stem, patterns tried in this order (first found wins):
  Y{ytid}  {ytid}  {ytid}_{start}  {ytid}_{start_int}  {ytid}_{start}_{end}  {ytid}_{start_int}_{end_int}
  Y{ytid}_{start}_{end}  {ytid}-{start_int}-{end_int}
({start} as written in the CSV, e.g. 30.000; {start_int} e.g. 30), each with the extensions wav flac mp3 ogg
opus in that order; the audio dirs are searched recursively, an earlier dir winning.
Lists below are comma- or space-separated (use commas inside maskspec.sh's --local_data_opts).
e.g.: $0 --db_root /data/audioset --audio_dirs /data/audioset/wav,/scratch/as_extra
Options:
  --db_root DIR          corpus root (default from db.sh: $db_root)
  --audio_dirs D1,D2     folders searched for audio (default <db_root>/audio)
  --name_patterns P1,P2  file name stems tried, in order, with {ytid} {start} {end} {start_int} {end_int}
  --audio_exts E1,E2     extensions tried, in order
  --sets S1,S2           sets to write (default $sets; balanced_train,eval needs no unbalanced CSV)
  --pretrain_extra BOOL  add audio files outside the segment lists to $data/pretrain (default $pretrain_extra)
  --nj N                 threads reading audio headers (default $nj)
  --data DIR             output folder (default $data)"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; fi

# Lists may be separated by commas or spaces (commas survive maskspec.sh's --local_data_opts word splitting).
IFS=', ' read -r -a set_list <<< "$sets"
opts=(--sets "${set_list[@]}")
for name in audio_dirs name_patterns audio_exts; do
  [ -n "${!name}" ] || continue
  IFS=', ' read -r -a items <<< "${!name}"
  opts+=("--$name" "${items[@]}")
done
# The reader checks --db_root (empty: the db.sh variable is unset; not a directory) and the corpus files.
python -m maskspec.data.corpora.audioset --db_root "$db_root" --out_dir "$data" --nj "$nj" \
  --pretrain_extra "$pretrain_extra" "${opts[@]}"
for set in "${set_list[@]}"; do
  if [ "$set" = pretrain ]; then
    utils/validate_data_dir.sh --no-feats --no-labels "$data/$set"
  else
    utils/validate_data_dir.sh --no-feats "$data/$set"
  fi
done
