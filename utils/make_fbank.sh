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
name=                            # feature files are raw_fbank_<name>.<job>.ark|h5 (default: the data dir's name)
reuse_from=                      # data dirs whose features to take where they fit, space-separated (see below)

help_message="Usage: $0 [options] <data-dir> [<log-dir> [<fbank-dir>]]
Computes fbank features of <data-dir>/wav.scp (cut by <data-dir>/segments if present) and writes
<data-dir>/feats.scp, utt2num_frames, utt2dur and fbank.yaml (the resolved settings; the header comment
records filetype and dtype). Feature files go to <fbank-dir> (default <data-dir>/data), job logs to
<log-dir> (default <data-dir>/log). A rerun skips when feats.scp lists every utterance, is newer than
wav.scp/segments and was made with the same settings, filetype and dtype.
With --reuse_from, an utterance that one of those data directories already has features for (the same
utterance id, the same wav.scp entry and segments line, and an identical fbank.yaml, filetype and dtype
included) takes its feats.scp, utt2num_frames and utt2dur lines from there, and only the other utterances
are computed. The reused lines name that directory's feature files: they must outlive <data-dir>.
e.g.: $0 --nj 8 --cmd 'run.pl' --fbank_config conf/fbank.yaml data/train
Options:
  --nj <n>                 # parallel jobs (default: $nj)
  --cmd <cmd>              # job runner: run.pl, queue.pl, slurm.pl with options (default: run.pl)
  --fbank_config <yaml>    # fbank settings (default: $fbank_config)
  --filetype <ark|hdf5>    # storage format (default: $filetype)
  --dtype <float32|float16>  # storage dtype (default: $dtype)
  --skip_bad <true|false>  # drop unusable utterances instead of failing (default: $skip_bad)
  --write_utt2dur <true|false>  # write utt2dur (default: $write_utt2dur)
  --overwrite <true|false> # recompute even when up to date (default: $overwrite)
  --name <name>            # feature file names raw_fbank_<name>.<job>.* (default: the data dir's name)
  --reuse_from '<dir> ...' # data dirs with features to reuse, first match wins (default: none)"

utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$utils/parse_options.sh"

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
data=$1
logdir=${2:-$data/log}
fbankdir=${3:-$data/data}
[ -n "$name" ] || name=$(basename "$data")
[ -n "$cmd" ] || cmd="$utils/run.pl"

log() { echo "$(date '+%F %T') $0: $*" >&2; }
die() { echo "$0: $*" >&2; exit 1; }

[ -f "$data/wav.scp" ] || die "no such file: $data/wav.scp"
[[ $nj =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive integer, got '$nj'"
[[ $filetype == ark || $filetype == hdf5 ]] || die "--filetype must be ark or hdf5, got '$filetype'"
[[ $dtype == float32 || $dtype == float16 ]] || die "--dtype must be float32 or float16, got '$dtype'"
[[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "--name may hold only letters, digits and _.-, got '$name'"
[ -f "$fbank_config" ] || die "no such fbank config: $fbank_config (see egs/TEMPLATE/conf/fbank_*.yaml)"
for src in $reuse_from; do
  for f in feats.scp utt2num_frames fbank.yaml; do
    [ -f "$src/$f" ] || die "--reuse_from: no $src/$f (only data directories with features can be reused)"
  done
  [ "$write_utt2dur" = false ] || [ -f "$src/utt2dur" ] || die "--reuse_from: no $src/utt2dur"
done
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

# Reuse: an utterance is "<utt-id>\t<segments line without its id, if any>\t<wav.scp entry>" in both directories.
identities() {  # <data-dir>: that line for each utterance
  if [ -f "$1/segments" ]; then
    awk 'NR == FNR { k = $1; sub(/^[^ \t]+[ \t]+/, ""); wav[k] = $0; next }
         { print $1 "\t" $2 " " $3 " " $4 "\t" (($2 in wav) ? wav[$2] : "(no wav.scp entry)") }' "$1/wav.scp" "$1/segments"
  else
    awk '{ k = $1; sub(/^[^ \t]+[ \t]+/, ""); print k "\t" $0 }' "$1/wav.scp"
  fi
}
reused=/dev/null  # "<utt-id> <feats.scp value> <frames> <duration>" of the reused utterances
if [ -n "$reuse_from" ]; then
  reused=$logdir/reused_$name
  todo=$logdir/todo_$name  # the utterances still to compute
  rm -f "$reused" "$todo"
  : > "$reused.tmp"
  identities "$data" > "$todo.tmp"
  for src in $reuse_from; do
    [ -s "$todo.tmp" ] || break
    if ! cmp -s "$resolved" "$src/fbank.yaml"; then
      log "not reusing $src: its fbank.yaml differs from $resolved"
      continue
    fi
    # Matching utterances go to $reused, the others stay in $todo for the next directory.
    identities "$src" > "$todo.src"
    rm -f "$todo.next"
    awk -v ids="$todo.src" -v feats="$src/feats.scp" -v frames="$src/utt2num_frames" \
        -v durs="$( [ "$write_utt2dur" = false ] || echo "$src/utt2dur")" -v reused="$reused.tmp" -v todo="$todo.next" '
      BEGIN {
        while ((getline line < ids) > 0) { i = index(line, "\t"); id[substr(line, 1, i - 1)] = substr(line, i + 1) }
        while ((getline line < feats) > 0) { split(line, f, " "); feat[f[1]] = f[2] }
        while ((getline line < frames) > 0) { split(line, f, " "); nf[f[1]] = f[2] }
        if (durs != "") while ((getline line < durs) > 0) { split(line, f, " "); dur[f[1]] = f[2] }
      }
      {
        i = index($0, "\t"); u = substr($0, 1, i - 1)
        if ((u in id) && id[u] == substr($0, i + 1) && (u in feat) && (u in nf) && (durs == "" || (u in dur)))
          print u, feat[u], nf[u], (durs == "" ? "-" : dur[u]) >> reused
        else
          print > todo
      }' "$todo.tmp" || die "could not match the utterances of $data with $src"
    touch "$todo.next"
    mv "$todo.next" "$todo.tmp"
  done
  cut -f1 "$todo.tmp" > "$todo"
  rm -f "$todo.tmp" "$todo.src"
  num_compute=$(wc -l < "$todo")
  log "reusing the features of $((num_utts - num_compute)) of $num_utts utterances of $data (from: $reuse_from)"
  compute_list=$logdir/$(basename "$list").todo_$name
  "$utils/filter_scp.pl" "$todo" "$list" > "$compute_list"
  mv "$reused.tmp" "$reused"
else
  num_compute=$num_utts
  compute_list=$list
fi

if [ "$nj" -gt "$num_compute" ]; then
  [ "$num_compute" -eq 0 ] || log "only $num_compute utterances to compute: using $num_compute jobs instead of $nj"
  nj=$num_compute
fi
prefix=$fbankdir/raw_fbank_$name
rm -f "$logdir/bad_utts_$name".*.txt

if [ "$nj" -gt 0 ]; then
  splitdir=$logdir/split_$name.$nj
  mkdir -p "$splitdir"
  split_outputs=()
  for n in $(seq "$nj"); do
    split_outputs+=("$splitdir/$(basename "$list").$n")
  done
  "$utils/split_scp.pl" "$compute_list" "${split_outputs[@]}" || die "could not split $compute_list into $nj parts"

  if [ "$list" = "$data/segments" ]; then
    inputs="--wav_scp $data/wav.scp --segments $splitdir/segments.JOB"
  else
    inputs="--wav_scp $splitdir/wav.scp.JOB"
  fi

  # outputs of an earlier run with another nj would otherwise be collected below
  rm -f "$prefix".*.ark "$prefix".*.h5 "$prefix".*.scp "$prefix".*.utt2num_frames "$prefix".*.utt2dur

  log "computing fbank of $num_compute utterances of $data in $nj jobs, logs in $logdir/make_fbank_$name.*.log"
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
fi

# Combined files (the jobs' pieces and the reused lines) are written under a temporary name and renamed, so a
# killed run leaves no partial list.
combine() {  # <suffix> <output> <field of $reused>
  local out=$2
  {
    for n in $(seq "$nj"); do cat "$prefix.$n.$1"; done
    awk -v c="$3" '{ print $1, $c }' "$reused"
  } | LC_ALL=C sort > "$out.tmp"
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

combine utt2num_frames "$data/utt2num_frames" 3
[ "$write_utt2dur" = false ] || combine utt2dur "$data/utt2dur" 4
combine scp "$data/feats.scp" 2
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
