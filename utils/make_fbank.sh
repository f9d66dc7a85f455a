#!/usr/bin/env bash
# Computes log-mel fbank features of a data directory: wav.scp (and segments) -> feats.scp, utt2num_frames.
# The work is python -m maskspec.bin.compute_fbank, nj jobs through $cmd; this script splits, collects and checks.
set -euo pipefail

nj=4                             # number of parallel jobs (lowered to the number of utterances if larger)
cmd=                             # job runner, e.g. "queue.pl --mem 2G" (default: run.pl beside this script)
fbank_config=conf/fbank.yaml     # fbank settings (YAML, keys of maskspec.features.fbank.FbankConfig)
filetype=ark                     # ark (Kaldi archive + offsets) or hdf5 (one .h5 per job)
dtype=float32                    # storage dtype, float32 or float16 (read back as float32)
skip_bad=false                   # true: list unusable utterances in <log-dir>/bad_utts.txt and drop them
write_utt2dur=true               # true: write <data-dir>/utt2dur from the decoded audio
overwrite=false                  # true: recompute even if feats.scp is complete and up to date

help_message="Usage: $0 [options] <data-dir> [<log-dir> [<fbank-dir>]]
Computes fbank features of <data-dir>/wav.scp (cut by <data-dir>/segments if present) and writes
<data-dir>/feats.scp, utt2num_frames, utt2dur and fbank.yaml (the resolved settings; the header comment
records filetype and dtype). Feature files go to <fbank-dir> (default <data-dir>/data), job logs to
<log-dir> (default <data-dir>/log). A rerun skips when feats.scp lists every utterance, is newer than
wav.scp/segments and was made with the same settings, filetype and dtype.
e.g.: $0 --nj 8 --cmd 'run.pl' --fbank_config conf/fbank.yaml data/train
Options:
  --nj <n>                 # parallel jobs (default: $nj)
  --cmd <cmd>              # job runner: run.pl, queue.pl, slurm.pl with options (default: run.pl)
  --fbank_config <yaml>    # fbank settings (default: $fbank_config)
  --filetype <ark|hdf5>    # storage format (default: $filetype)
  --dtype <float32|float16>  # storage dtype (default: $dtype)
  --skip_bad <true|false>  # drop unusable utterances instead of failing (default: $skip_bad)
  --write_utt2dur <true|false>  # write utt2dur (default: $write_utt2dur)
  --overwrite <true|false> # recompute even when up to date (default: $overwrite)"

utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$utils/parse_options.sh"

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
data=$1
logdir=${2:-$data/log}
fbankdir=${3:-$data/data}
name=$(basename "$data")
[ -n "$cmd" ] || cmd="$utils/run.pl"

log() { echo "$(date '+%F %T') $0: $*" >&2; }
die() { echo "$0: $*" >&2; exit 1; }

[ -f "$data/wav.scp" ] || die "no such file: $data/wav.scp"
[[ $nj =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive integer, got '$nj'"
[[ $filetype == ark || $filetype == hdf5 ]] || die "--filetype must be ark or hdf5, got '$filetype'"
[[ $dtype == float32 || $dtype == float16 ]] || die "--dtype must be float32 or float16, got '$dtype'"
[ -f "$fbank_config" ] || die "no such fbank config: $fbank_config (see egs/TEMPLATE/conf/fbank_*.yaml)"
command -v python > /dev/null || die "python is not on PATH (source path.sh to activate tools/venv)"

if [ -f "$data/segments" ]; then
  list=$data/segments
else
  list=$data/wav.scp
fi
num_utts=$(wc -l < "$list")
[ "$num_utts" -gt 0 ] || die "$list is empty"

mkdir -p "$logdir" "$fbankdir"
fbankdir=$(cd "$fbankdir" && pwd)

# The resolved settings (every field), with the storage options as a header comment, so the rerun check can
# compare one file.
resolved=$logdir/fbank_$name.yaml
python -m maskspec.bin.compute_fbank --config "$fbank_config" --write_config "$resolved.body" \
  || die "invalid fbank config $fbank_config"
{ echo "# written by make_fbank.sh: filetype=$filetype dtype=$dtype"; cat "$resolved.body"; } > "$resolved"
rm -f "$resolved.body"

keys() { cut -d' ' -f1 "$1"; }

if [ "$overwrite" = false ] && [ -s "$data/feats.scp" ] && [ -f "$data/utt2num_frames" ] \
    && [ -f "$data/fbank.yaml" ] && [ "$data/feats.scp" -nt "$data/wav.scp" ] && [ "$data/feats.scp" -nt "$list" ] \
    && cmp -s "$resolved" "$data/fbank.yaml" && cmp -s <(keys "$list") <(keys "$data/feats.scp") \
    && cmp -s <(keys "$list") <(keys "$data/utt2num_frames"); then
  log "$data/feats.scp is complete and up to date; skipping (--overwrite true recomputes)"
  exit 0
fi

if [ "$nj" -gt "$num_utts" ]; then
  log "only $num_utts utterances: using $num_utts jobs instead of $nj"
  nj=$num_utts
fi

splitdir=$logdir/split_$name.$nj
mkdir -p "$splitdir"
split_outputs=()
for n in $(seq "$nj"); do
  split_outputs+=("$splitdir/$(basename "$list").$n")
done
"$utils/split_scp.pl" "$list" "${split_outputs[@]}" || die "could not split $list into $nj parts"

if [ "$list" = "$data/segments" ]; then
  inputs="--wav_scp $data/wav.scp --segments $splitdir/segments.JOB"
else
  inputs="--wav_scp $splitdir/wav.scp.JOB"
fi

prefix=$fbankdir/raw_fbank_$name
# outputs of an earlier run with another nj would otherwise be collected below
rm -f "$prefix".*.ark "$prefix".*.h5 "$prefix".*.scp "$prefix".*.utt2num_frames "$prefix".*.utt2dur
rm -f "$logdir/bad_utts_$name".*.txt

log "computing fbank of $num_utts utterances of $data in $nj jobs, logs in $logdir/make_fbank_$name.*.log"
# $cmd and $inputs are split into words on purpose (Kaldi convention: "queue.pl --mem 2G")
# shellcheck disable=SC2086
if ! $cmd JOB=1:"$nj" "$logdir/make_fbank_$name.JOB.log" \
    python -m maskspec.bin.compute_fbank --config "$resolved" $inputs --out_prefix "$prefix.JOB" \
    --filetype "$filetype" --dtype "$dtype" --skip_bad "$skip_bad" --bad_list "$logdir/bad_utts_$name.JOB.txt"; then
  grep -h " ERROR: " "$logdir/make_fbank_$name".*.log 2> /dev/null | head -n 5 >&2 || true
  die "feature extraction failed, see $logdir/make_fbank_$name.*.log"
fi

for n in $(seq "$nj"); do
  [ -f "$prefix.$n.scp" ] || die "job $n finished without writing $prefix.$n.scp, see $logdir/make_fbank_$name.$n.log"
done

# Combined files are written under a temporary name and renamed, so a killed run leaves no partial list.
combine() {  # <suffix> <output>
  local out=$2
  for n in $(seq "$nj"); do cat "$prefix.$n.$1"; done | LC_ALL=C sort > "$out.tmp"
  mv "$out.tmp" "$out"
}

bad_list=$logdir/bad_utts.txt
if [ "$skip_bad" = true ]; then
  for n in $(seq "$nj"); do cat "$logdir/bad_utts_$name.$n.txt"; done | LC_ALL=C sort > "$bad_list.tmp"
  mv "$bad_list.tmp" "$bad_list"
else
  rm -f "$bad_list"
fi
num_bad=$( [ -f "$bad_list" ] && wc -l < "$bad_list" || echo 0)

combine utt2num_frames "$data/utt2num_frames"
[ "$write_utt2dur" = false ] || combine utt2dur "$data/utt2dur"
combine scp "$data/feats.scp"
num_done=$(wc -l < "$data/feats.scp")
[ "$num_done" -gt 0 ] || die "no utterance of $data could be processed, see $bad_list"
[ $((num_done + num_bad)) -eq "$num_utts" ] \
  || die "expected $num_utts utterances, got $num_done with features and $num_bad bad, see $logdir"

if [ "$num_bad" -gt 0 ]; then
  log "skipped $num_bad bad utterances (listed in $bad_list); removing them from $data"
  "$utils/fix_data_dir.sh" "$data" >&2 || die "could not remove the bad utterances from $data"
fi

cp "$resolved" "$data/fbank.yaml.tmp"
mv "$data/fbank.yaml.tmp" "$data/fbank.yaml"
# feats.scp is the completion marker: last and newest, so the rerun check above trusts it only now
touch "$data/feats.scp"
log "wrote $data/feats.scp ($num_done utterances, $filetype $dtype) and utt2num_frames"
