#!/usr/bin/env bash
# Fbank features of several data directories that share clips (stage 2 of egs/TEMPLATE/maskspec.sh): each clip
# computed once, every set's feature files in one pool folder, the pool's unused files deleted afterwards.
# The per-set work is utils/make_fbank.sh; this script decides which sets to (re)do, where their clips'
# features can be taken from, and keeps the pool.
set -euo pipefail

nj=8                             # parallel jobs per set (utils/make_fbank.sh --nj)
cmd=                             # job runner, e.g. "queue.pl --mem 2G" (default: run.pl beside this script)
fbank_config=conf/fbank.yaml     # fbank settings (YAML, keys of maskspec.features.fbank.FbankConfig)
filetype=ark                     # ark or hdf5
dtype=float32                    # float32 or float16
skip_bad=false                   # true: drop clips that cannot be decoded (listed in <feats-root>/<set>/log/bad_utts.txt)
reuse=true                       # true: take a clip's features from another complete set that has it
overwrite=false                  # true: redo the sets even when complete; only this run's sets are reuse sources

help_message="Usage: $0 [options] <data-root> <feats-root> <pool-dir> [<set> ...]
For each <set>: <feats-root>/<set> becomes a copy of the data directory <data-root>/<set> with feats.scp,
utt2num_frames, utt2dur and fbank.yaml (utils/make_fbank.sh), and <feats-root>/<set>/.done records the settings
and inputs it was made from, ending with the checksum of its feats.scp. A set whose .done matches and whose
feature files all exist is skipped; one made with other settings stops the run (--overwrite true redoes it).
Feature files go to <pool-dir>, named raw_fbank_<set>.<run id>.<job>.ark|h5, and are never rewritten, so a
set may name files that another set computed:
 - a clip with the same utterance id, wav.scp entry, segments line and fbank.yaml as a clip of a complete set
   (the sets done before it in this run, then, unless --overwrite true, every other set of <feats-root> with a
   .done whose feature files exist) takes that set's features (--reuse false: every set computes all its clips);
 - at the end, a file of <pool-dir> that no <feats-root>/*/feats.scp names is deleted. Runs sharing <pool-dir>
   hold a shared lock on <pool-dir>/.lock while they write (flock); the deletion needs the lock alone, and is
   left to a later run when another holds it. With no <set>, only this deletion is done.
e.g.: $0 --nj 8 --cmd run.pl --fbank_config conf/fbank.yaml data dump/fbank dump/fbank_pool train_fold1 test_fold1
Options:
  --nj <n>                   # parallel jobs per set (default: $nj)
  --cmd <cmd>                # job runner: run.pl, queue.pl, slurm.pl with options (default: run.pl)
  --fbank_config <yaml>      # fbank settings (default: $fbank_config)
  --filetype <ark|hdf5>      # storage format (default: $filetype)
  --dtype <float32|float16>  # storage dtype (default: $dtype)
  --skip_bad <true|false>    # drop clips that cannot be decoded instead of failing (default: $skip_bad)
  --reuse <true|false>       # take clips' features from other complete sets (default: $reuse)
  --overwrite <true|false>   # redo complete sets (default: $overwrite)"

utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$utils/parse_options.sh"
. "$utils/lib/stages.sh"

log() { echo "$(date '+%F %T') $0: $*" >&2; }
die() { echo "$0: $*" >&2; exit 1; }

if [ $# -lt 3 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
data_root=$1
feats_root=$2
pool=$3
shift 3
[[ $nj =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive integer, got '$nj'"
[[ $filetype == ark || $filetype == hdf5 ]] || die "--filetype must be ark or hdf5, got '$filetype'"
[[ $dtype == float32 || $dtype == float16 ]] || die "--dtype must be float32 or float16, got '$dtype'"
[ $# -eq 0 ] || [ -f "$fbank_config" ] || die "no such fbank config: $fbank_config"
for dset in "$@"; do
  [[ $dset =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad set name '$dset' (letters, digits and _.- only)"
  [ -f "$data_root/$dset/wav.scp" ] || die "no $data_root/$dset/wav.scp (prepare the data directory first)"
done
[ -n "$cmd" ] || cmd="$utils/run.pl"
run_id=$(date '+%Y%m%dT%H%M%S')_$$

missing_feats() {  # <data-dir>: the first feature file named in its feats.scp that does not exist, if any
  local f
  awk '{ sub(/:[^:]*$/, "", $2); print $2 }' "$1/feats.scp" | LC_ALL=C sort -u | while IFS= read -r f; do
    [ -f "$f" ] || { echo "$f"; break; }
  done
}

# Deletes the pool files no feats.scp in $feats_root names: the features of sets redone or removed since, the
# jobs' own lists, what a killed run left behind. Files a run is writing are not named anywhere yet, so this
# waits for no one: it runs only when it gets the pool's lock to itself, and otherwise leaves them for later.
prune_pool() {
  local named=() scp f n=0
  if ! command -v flock > /dev/null; then
    log "no flock command: unused files in $pool are not deleted"
    return 0
  fi
  if ! flock -xn 9; then
    log "another run is writing into $pool; its unused files are deleted by a later run"
    return 0
  fi
  for scp in "$feats_root"/*/feats.scp; do
    [ -f "$scp" ] && named+=("$scp")
  done
  while IFS= read -r f; do
    rm -f "$pool/$f"
    n=$((n + 1))
  done < <(LC_ALL=C comm -23 \
             <(find "$pool" -maxdepth 1 -type f ! -name .lock -printf '%f\n' | LC_ALL=C sort) \
             <(cat /dev/null ${named[@]+"${named[@]}"} | awk '{ sub(/:[^:]*$/, "", $2); n = split($2, p, "/"); print p[n] }' \
               | LC_ALL=C sort -u))
  [ "$n" -eq 0 ] || log "deleted $n files in $pool that no feats.scp names"
}

mkdir -p "$pool"
if command -v flock > /dev/null; then
  # Held while this run writes into the pool; prune_pool needs it alone.
  exec 9> "$pool/.lock"
  flock -s 9
fi
done_here=()  # the sets this run made or found complete, the latest first: where features are reused from
declare -A feats_exist=()  # other sets of $feats_root: do all the files their feats.scp names exist (yes/no)?
for dset in "$@"; do
  src=$data_root/$dset
  dst=$feats_root/$dset
  fingerprint="make_fbank.sh --filetype $filetype --dtype $dtype --skip_bad $skip_bad
$(fingerprint_file "$fbank_config")
$(for f in wav.scp segments utt2label utt2label_known labels.txt; do [ ! -f "$src/$f" ] || fingerprint_file "$src/$f"; done)"
  # The marker ends with the checksum of feats.scp: the files it names are never rewritten, so the checksum
  # stands for the features, wherever they were computed. (A marker from before it was added gets it.)
  if [ -f "$dst/.done" ] && [ "$(cat "$dst/.done")" = "$fingerprint" ]; then
    mark_done "$dst" "$fingerprint
$(fingerprint_file "$dst/feats.scp")"
  fi
  if is_done "$dst" "$fingerprint
$(fingerprint_file "$dst/feats.scp")"; then
    gone=$(missing_feats "$dst")
    if [ -z "$gone" ]; then
      log "$dst is complete; skipping"
      done_here=("$dst" ${done_here[@]+"${done_here[@]}"})
      continue
    fi
    log "$gone, named in $dst/feats.scp, no longer exists; redoing $dst"
  fi
  rm -f "$dst/.done"
  rm -rf "$dst"
  mkdir -p "$dst"
  # A copy of the data directory, so that <data-root> keeps the raw sets and a rerun starts clean.
  find "$src" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$dst/" \;
  rm -f "$dst/feats.scp" "$dst/utt2num_frames" "$dst/stats.json" "$dst/fbank.yaml"
  # Features to reuse: those of this run's sets, then (unless --overwrite true redoes them) of the other complete
  # sets here. make_fbank.sh takes a clip's features only from a set with the same fbank.yaml and audio.
  sources=()
  if [ "$reuse" = true ]; then
    sources=(${done_here[@]+"${done_here[@]}"})
    if [ "$overwrite" = false ]; then
      for other in "$feats_root"/*; do
        [ -f "$other/.done" ] && [ -f "$other/feats.scp" ] && [ "$other" != "$dst" ] || continue
        [[ " ${sources[*]:-} " != *" $other "* ]] || continue
        [ -n "${feats_exist[$other]:-}" ] || feats_exist[$other]=$([ -z "$(missing_feats "$other")" ] && echo yes || echo no)
        [ "${feats_exist[$other]}" = no ] || sources+=("$other")
      done
    fi
  fi
  log "utils/make_fbank.sh $src -> $dst ($nj jobs)"
  "$utils/make_fbank.sh" --nj "$nj" --cmd "$cmd" --fbank_config "$fbank_config" \
    --filetype "$filetype" --dtype "$dtype" --skip_bad "$skip_bad" \
    --name "$dset.$run_id" --reuse_from "${sources[*]:-}" "$dst" "$dst/log" "$pool" \
    || fail_with_logs "feature extraction of $dst" "$dst/log/make_fbank_*.log"
  opts=()
  [ -f "$dst/utt2label" ] || opts+=(--no-labels)
  "$utils/validate_data_dir.sh" ${opts[@]+"${opts[@]}"} "$dst" >&2 || die "$dst is not a valid data directory"
  mark_done "$dst" "$fingerprint
$(fingerprint_file "$dst/feats.scp")"
  done_here=("$dst" ${done_here[@]+"${done_here[@]}"})
done
prune_pool
