#!/usr/bin/env bash
# Stage 1 of the AudioSet recipe: the segment CSVs + your audio download -> data/balanced_train (AS-20K),
# data/train_2m (AS-2M = balanced + unbalanced), data/eval, data/pretrain (audio only). Segments without
# (readable) audio are skipped and listed in data/local/audioset_{missing,unreadable}_<set>.txt.
set -euo pipefail
. ./path.sh
. ./db.sh

db_root=$AUDIOSET     # corpus root: class_labels_indices.csv, *_segments.csv, audio/
audio_dirs=""         # folders searched for audio, space-separated (default: <db_root>/audio)
name_patterns=""      # file name stems tried in order (default: see below)
audio_exts=""         # extensions tried in order (default: wav flac mp3 ogg opus)
sets="balanced_train eval train_2m pretrain"   # sets to write
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
e.g.: $0 --db_root /data/audioset --audio_dirs '/data/audioset/wav /scratch/as_extra'
Options:
  --db_root DIR          corpus root (default from db.sh: $db_root)
  --audio_dirs 'D1 D2'   folders searched for audio (default <db_root>/audio)
  --name_patterns 'P..'  file name stems tried, in order, with {ytid} {start} {end} {start_int} {end_int}
  --audio_exts 'E..'     extensions tried, in order
  --sets 'S..'           sets to write (default '$sets'; 'balanced_train eval' needs no unbalanced CSV)
  --pretrain_extra BOOL  add audio files outside the segment lists to $data/pretrain (default $pretrain_extra)
  --nj N                 threads reading audio headers (default $nj)
  --data DIR             output folder (default $data)"
. "$MAIN_ROOT/utils/parse_options.sh"
if [ $# -ne 0 ]; then echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; fi
if [ ! -d "$db_root" ]; then
  echo "$0: AudioSet root '$db_root' not found: set AUDIOSET in db.sh or pass --db_root" >&2; exit 1
fi

opts=()
# Word splitting is wanted here: each option holds a space-separated list.
# shellcheck disable=SC2206
[ -z "$audio_dirs" ] || opts+=(--audio_dirs $audio_dirs)
# shellcheck disable=SC2206
[ -z "$name_patterns" ] || opts+=(--name_patterns $name_patterns)
# shellcheck disable=SC2206
[ -z "$audio_exts" ] || opts+=(--audio_exts $audio_exts)
# shellcheck disable=SC2206
python -m maskspec.data.corpora.audioset --db_root "$db_root" --out_dir "$data" --nj "$nj" --sets $sets \
  --pretrain_extra "$pretrain_extra" "${opts[@]}"
for set in $sets; do
  if [ "$set" = pretrain ]; then
    validate_data_dir.sh --no-feats --no-labels "$data/$set"
  else
    validate_data_dir.sh --no-feats "$data/$set"
  fi
done
