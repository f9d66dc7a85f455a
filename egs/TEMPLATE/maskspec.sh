#!/usr/bin/env bash
# The shared MaskSpec recipe: data preparation, fbank features, self-supervised pre-training, fine-tuning and
# scoring, for every corpus. A recipe's run.sh sets the set names and configs and calls this script; the corpus
# logic lives in the recipe's local/data.sh. See egs/TEMPLATE/README.md.
set -euo pipefail

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}
die() {
  echo "$0: $*" >&2
  exit 1
}
min() {
  if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi
}
SECONDS=0
# The exact command line, for the replay scripts written into each experiment directory.
replay_command=$(printf '%q ' "$0" "$@")

# General
stage=1                    # first stage to run (1 data, 2 features, 3 pre-training, 4 fine-tuning, 5 scoring)
stop_stage=5               # last stage to run
ngpu=0                     # GPUs per training job (0: CPU); more than 1 runs torchrun with one process per GPU
num_nodes=1                # nodes per training job (> 1: --ngpu GPUs on each, or one CPU process with --ngpu 0;
                           # Slurm only: utils/torchrun_nodes.sh)
nj=8                       # parallel jobs for feature extraction
overwrite=false            # true: redo work that a .done marker says is complete, instead of skipping it
datadir=data               # Kaldi data directories written by local/data.sh
dumpdir=dump               # features: <dumpdir>/fbank/<set> (a copy of the data directory plus feats.scp),
                           # feature files in <dumpdir>/fbank_pool (shared by the sets)
expdir=exp                 # experiments: <expdir>/pretrain_<pretrain_tag>, <expdir>/finetune_<tag>

# Data sets. A name holding "{fold}" stands for one set per value of --folds.
local_data_opts=""         # options passed to local/data.sh
pretrain_set=""            # unlabelled set for pre-training (stage 3)
pretrain_valid_set=""      # held-out set for the pre-training loss (empty: --valid_set)
train_set=""               # labelled fine-tuning set, e.g. train or train_fold{fold}
valid_set=""               # validation set for fine-tuning (model selection), e.g. valid_fold{fold}
test_sets=""               # sets to score, space-separated, e.g. "test" or "test_fold{fold}"
folds=""                   # e.g. "1 2 3 4 5": stages 4-5 run once per fold and stage 5 averages over folds

# Features (stage 2)
fbank_config=conf/fbank.yaml  # fbank settings (see egs/TEMPLATE/conf/fbank_*.yaml)
feats_filetype=ark         # ark or hdf5
feats_dtype=float32        # float32 or float16 (half the disk space)
skip_bad_audio=false       # true: drop clips that cannot be decoded (listed in <dump>/<set>/log/bad_utts.txt)
feats_reuse=true           # true: a clip that another set already has features for (same utterance id, audio
                           # and fbank settings) is not computed again; false: every set computes all its clips
stats_max_utts=10000       # clips sampled for the global mean/std (0: all)
check_space=true           # true: stage 2 first estimates the features' bytes (utt2dur, fbank settings, dtype)
                           # and stops when the file system of <dumpdir> has less free space

# Pre-training (stage 3)
pretrain=auto              # auto: pre-train unless --init is given; true: always; false: never
pretrain_config=conf/pretrain.yaml  # pre-training options (YAML for maskspec.bin.pretrain)
pretrain_args=""           # extra options for maskspec.bin.pretrain, e.g. "--epochs 10"
pretrain_tag=""            # name of the pre-training experiment (default: from --pretrain_config)
init=""                    # encoder to fine-tune: a stage-3 checkpoint (e.g. the AudioSet recipe's), "none"
                           # (from scratch only) or empty (this recipe's stage 3)
init_front_end=true        # true: an --init imported by maskspec-import (the MaskSpec authors', Audio-MAE's, EAT's)
                           # gets features computed with its source's fbank settings (not --fbank_config), in
                           # <dumpdir>/fbank_<source> (pool <dumpdir>/fbank_<source>_pool); false: --fbank_config

# Fine-tuning (stage 4)
finetune_config=conf/finetune.yaml  # fine-tuning options (YAML for maskspec.bin.finetune)
finetune_args=""           # extra options for maskspec.bin.finetune (every fine-tuned model)
tag=""                     # name of the fine-tuning experiment (default: from --finetune_config)
scratch_baseline=false     # true: also fine-tune a randomly initialised encoder with the same settings
linear_probe=false         # true: also train only the head on the frozen pre-trained encoder
linear_probe_config=""     # options for the linear probe (default: --finetune_config)
linear_probe_args=""       # extra options for the linear probe (after --finetune_args)

# Speech recognition (recipes whose sets have transcripts, <datadir>/<set>/text)
token_type=""              # empty: not a speech recipe; bpe (sentencepiece) or char: stage 1 builds the token list
                           # from <train_set>/text and stage 4 fine-tunes with --task_type ctc on those units
nbpe=300                   # sentencepiece vocabulary size (--token_type bpe)
bpemode=unigram            # sentencepiece model type (--token_type bpe): unigram or bpe
nbpe_fallback=false        # true: a training text too small for --nbpe pieces gets the most it holds (a warning)
token_listdir=""           # where token lists go (default <datadir>/token_list)

# Scoring (stage 5)
score_args=""              # extra options for maskspec.bin.score

help_message=$(cat << EOF
Usage: $0 --train_set <set> --valid_set <set> --test_sets "<set> ..." [options]
Runs the MaskSpec stages of a recipe (call it from the recipe directory, usually through run.sh):
  1 data        local/data.sh \$local_data_opts, then utils/validate_data_dir.sh on every set; with --token_type,
                the token list of <train_set>/text (maskspec.bin.token_list, sentencepiece for bpe) into
                <token_listdir>/bpe_<bpemode><nbpe>/{bpe.model,tokens.txt} or <token_listdir>/char/tokens.txt
  2 features    utils/make_fbank_pool.sh: every set into <dumpdir>/fbank/<set> (each clip computed once when
                sets share it, files in <dumpdir>/fbank_pool), global mean/std of the pre-training set and of
                each training set
  3 pre-train   maskspec.bin.pretrain -> <expdir>/pretrain_<pretrain_tag>; skipped when --init is given
  4 fine-tune   maskspec.bin.finetune -> <expdir>/finetune_<tag>/<model>[/fold<f>], model = pretrained
                (from --init or stage 3), scratch (--scratch_baseline true), linear_probe (--linear_probe true)
  5 score       maskspec.bin.score on every test set, aggregate_results over folds, <expdir>/finetune_<tag>/RESULTS.md
                comparing the models and <expdir>/RESULTS.md collecting every fine-tuning experiment
Each unit of work writes a .done marker when it succeeds; a rerun skips it (and says so) unless
--overwrite true, and refuses to reuse it when it was made with other settings. An interrupted training
resumes from its newest checkpoint. Each experiment directory gets run.sh, replaying its stage.
e.g.: $0 --stage 3 --ngpu 4 --pretrain_set unbalanced --train_set balanced --valid_set eval --test_sets eval
e.g.: $0 --init ../audioset/exp/pretrain_base/model.pt --folds "1 2 3 4 5" \\
        --train_set train_fold{fold} --valid_set test_fold{fold} --test_sets test_fold{fold}
Options (default):
  --stage (1)  --stop_stage (5)     stages to run
  --ngpu (0)                        GPUs per training job; 0 = CPU, >1 = torchrun
  --num_nodes (1)                   nodes per training job, --ngpu GPUs each (--ngpu 0: one CPU process
                                    each); cuda_cmd must be slurm.pl
  --nj (8)                          feature extraction jobs
  --overwrite (false)               redo work marked complete
  --datadir (data) --dumpdir (dump) --expdir (exp)
  --local_data_opts ("")            options for local/data.sh
  --pretrain_set --pretrain_valid_set --train_set --valid_set --test_sets
                                    set names; "{fold}" is replaced by each of --folds
  --folds ("")                      e.g. "1 2 3 4 5"
  --fbank_config (conf/fbank.yaml) --feats_filetype (ark) --feats_dtype (float32)
  --skip_bad_audio (false) --stats_max_utts (10000) --feats_reuse (true) --check_space (true)
  --pretrain (auto)                 auto | true | false
  --pretrain_config (conf/pretrain.yaml) --pretrain_args ("") --pretrain_tag ("")
  --init ("")                       checkpoint to fine-tune from, "none", or "" for this recipe's stage 3
  --init_front_end (true)           features with the front end an imported --init records (maskspec-import)
  --finetune_config (conf/finetune.yaml) --finetune_args ("") --tag ("")
  --scratch_baseline (false) --linear_probe (false) --linear_probe_config ("") --linear_probe_args ("")
  --score_args ("")
  --token_type ("": none) --nbpe (300) --bpemode (unigram) --nbpe_fallback (false) --token_listdir (<datadir>/token_list)
                                    speech recipes: bpe|char units, CTC fine-tuning (--task_type ctc)
EOF
)

# shellcheck source=/dev/null
. utils/parse_options.sh
[ $# -eq 0 ] || die "unexpected argument '$1' (options are --name value; see --help)"

[ -f path.sh ] || die "no path.sh here: run this script from a recipe directory (egs/<corpus>)"
[ -f cmd.sh ] || die "no cmd.sh here: run this script from a recipe directory (egs/<corpus>)"
# shellcheck source=/dev/null
. ./path.sh
# shellcheck source=/dev/null
. ./cmd.sh
for var in train_cmd cuda_cmd decode_cmd; do
  [ -n "${!var:-}" ] || die "cmd.sh must set $var (e.g. $var=\"run.pl\")"
done

# ---------------------------------------------------------------------------------------------------------
# Option checks: fail before any work starts.
[[ $stage =~ ^[0-9]+$ && $stop_stage =~ ^[0-9]+$ ]] || die "--stage and --stop_stage must be integers"
[[ $ngpu =~ ^[0-9]+$ ]] || die "--ngpu must be a non-negative integer, got '$ngpu'"
[[ $num_nodes =~ ^[1-9][0-9]*$ ]] || die "--num_nodes must be a positive integer, got '$num_nodes'"
[[ $nj =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive integer, got '$nj'"
[[ $stats_max_utts =~ ^[0-9]+$ ]] || die "--stats_max_utts must be a non-negative integer, got '$stats_max_utts'"
in_stages() {  # <n>: is stage n selected?
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}
[[ $pretrain == auto || $pretrain == true || $pretrain == false ]] \
  || die "--pretrain must be auto, true or false, got '$pretrain'"
[[ $feats_filetype == ark || $feats_filetype == hdf5 ]] || die "--feats_filetype must be ark or hdf5"
[[ $feats_dtype == float32 || $feats_dtype == float16 ]] || die "--feats_dtype must be float32 or float16"
[[ $check_space == true || $check_space == false ]] || die "--check_space must be true or false, got '$check_space'"
[[ $init_front_end == true || $init_front_end == false ]] \
  || die "--init_front_end must be true or false, got '$init_front_end'"
[ -n "$linear_probe_config" ] || linear_probe_config=$finetune_config
[[ -z $token_type || $token_type == bpe || $token_type == char ]] || die "--token_type must be bpe, char or empty"
[[ $nbpe =~ ^[1-9][0-9]*$ ]] || die "--nbpe must be a positive integer, got '$nbpe'"
[[ $bpemode == unigram || $bpemode == bpe ]] || die "--bpemode must be unigram or bpe, got '$bpemode'"
[ -z "$token_type" ] || [ -z "$folds" ] || die "--token_type with --folds: one token list per fold is not supported"
for v in folds; do
  for f in ${!v}; do [[ $f =~ ^[A-Za-z0-9_.-]+$ ]] || die "--folds: bad fold name '$f'"; done
done

# Sets named with "{fold}" expand to one set per fold; without --folds they must not use it.
expand_sets() {  # <set-pattern>... -> set names, one per line
  local pattern f
  for pattern in "$@"; do
    if [[ $pattern == *"{fold}"* ]]; then
      [ -n "$folds" ] || die "set '$pattern' uses {fold} but --folds is empty"
      for f in $folds; do echo "${pattern//\{fold\}/$f}"; done
    else
      echo "$pattern"
    fi
  done
}
fold_set() {  # <set-pattern> <fold>: the set of one fold ("" fold: the pattern itself)
  echo "${1//\{fold\}/$2}"
}
if [ -n "$folds" ]; then
  [[ $train_set == *"{fold}"* ]] || die "--folds is given but --train_set '$train_set' has no {fold}"
  fold_list=$folds
else
  fold_list=none  # one pass with no fold
fi
fold_suffix() {  # <fold|none> -> "" or "/fold<f>"
  [ "$1" = none ] && echo "" || echo "/fold$1"
}

pretrain_valid_default=false
[ -n "$pretrain_valid_set" ] || { pretrain_valid_set=$valid_set; pretrain_valid_default=true; }
# Stage 3 runs when --pretrain says so, or (auto) when there is no external --init.
if [ "$pretrain" = true ] || { [ "$pretrain" = auto ] && [ -z "$init" ]; }; then
  run_pretrain=true
else
  run_pretrain=false
fi
if [ "$run_pretrain" = true ] && [ -n "$init" ] && [ "$init" != none ]; then
  die "--pretrain true with --init: fine-tuning would ignore one of them; give one (--init none for scratch only)"
fi
[ "$init" != none ] || [ "$linear_probe" = false ] || die "--linear_probe true needs a pre-trained encoder, not --init none"
# Stage 3 runs once, whatever --folds says: its sets cannot be "{fold}" patterns, which the default validation
# set (--valid_set) of a fold recipe is. Stages 1-2 prepare these sets, so say it before they start.
if [ "$run_pretrain" = true ] && [ -n "$folds" ] && [ "$stage" -le 3 ]; then
  read -r first_fold _ <<< "$folds"
  why=""
  if in_stages 3 && [ -z "$pretrain_set" ]; then
    why="--pretrain_set is empty"
  elif [[ $pretrain_set == *"{fold}"* ]]; then
    why="--pretrain_set '$pretrain_set' is one set per fold"
  elif [[ $pretrain_valid_set == *"{fold}"* ]]; then
    why="--pretrain_valid_set '$pretrain_valid_set' is one set per fold"
    [ "$pretrain_valid_default" = false ] || why="--pretrain_valid_set is empty, and its default --valid_set '$valid_set' is one set per fold"
  fi
  [ -z "$why" ] || die "pre-training here (--init '$init') runs once, on one set, but $why: give --pretrain_set and" \
    "--pretrain_valid_set without {fold} (e.g. --pretrain_set $(fold_set "$train_set" "$first_fold") --pretrain_valid_set" \
    "$(fold_set "$valid_set" "$first_fold")), or --init <checkpoint> to fine-tune an encoder pre-trained elsewhere"
fi

# Experiment names: the config's file name without its pretrain_/finetune_ prefix, unless given.
if [ -z "$pretrain_tag" ]; then
  pretrain_tag=$(basename "$pretrain_config"); pretrain_tag=${pretrain_tag%.yaml}; pretrain_tag=${pretrain_tag#pretrain_}
  [ "$pretrain_tag" != pretrain ] || pretrain_tag=default
fi
if [ -z "$tag" ]; then
  tag=$(basename "$finetune_config"); tag=${tag%.yaml}; tag=${tag#finetune_}
  [ "$tag" != finetune ] || tag=default
fi
pretrain_exp=$expdir/pretrain_$pretrain_tag
finetune_exp=$expdir/finetune_$tag
# The token list of a speech recipe (ESPnet's layout) and what fine-tuning takes from it.
[ -n "$token_listdir" ] || token_listdir=$datadir/token_list
ctc_args=()
if [ "$token_type" = bpe ]; then
  token_dir=$token_listdir/bpe_$bpemode$nbpe
  ctc_args=(--task_type ctc --token_list "$token_dir/tokens.txt" --bpemodel "$token_dir/bpe.model")
elif [ "$token_type" = char ]; then
  token_dir=$token_listdir/char
  ctc_args=(--task_type ctc --token_list "$token_dir/tokens.txt")
fi
feats_root=$dumpdir/fbank

# The stage-3 output that fine-tuning starts from.
pretrain_checkpoint=$pretrain_exp/model.pt  # weights after the last step, written at the end of stage 3
if [ -z "$init" ]; then
  init_checkpoint=$pretrain_checkpoint
else
  init_checkpoint=$init
fi

# Every data set this run touches, each once, in a stable order.
all_sets=()
add_set() {
  local s x
  for s in "$@"; do
    [ -n "$s" ] || continue
    for x in ${all_sets[@]+"${all_sets[@]}"}; do [ "$x" != "$s" ] || continue 2; done
    all_sets+=("$s")
  done
}
if [ "$run_pretrain" = true ]; then
  add_set "$pretrain_set" "$pretrain_valid_set"
fi
# Plain assignments, so that an error inside expand_sets stops the script (set -e).
# shellcheck disable=SC2086
train_sets=$(expand_sets $train_set)
# shellcheck disable=SC2086
eval_sets=$(expand_sets $valid_set $test_sets)
# shellcheck disable=SC2086
add_set $train_sets $eval_sets
# The configs of the selected stages must exist before anything runs.
config_checks=()
in_stages 2 && config_checks+=(fbank_config)
in_stages 3 && [ "$run_pretrain" = true ] && config_checks+=(pretrain_config)
in_stages 4 && config_checks+=(finetune_config)
in_stages 4 && [ "$linear_probe" = true ] && config_checks+=(linear_probe_config)
for f in ${config_checks[@]+"${config_checks[@]}"}; do
  [ -f "${!f}" ] || die "--$f: no such file '${!f}'"
done
if [ "$run_pretrain" = true ] && in_stages 3; then
  [ -n "$pretrain_set" ] || die "stage 3 needs --pretrain_set (or --init <checkpoint> to skip pre-training)"
  [ -n "$pretrain_valid_set" ] || die "stage 3 needs --pretrain_valid_set or --valid_set"
fi
in_stages 4 && [ -z "$train_set" ] && die "stage 4 needs --train_set"
in_stages 5 && [ -z "$test_sets" ] && die "stage 5 needs --test_sets"

# ---------------------------------------------------------------------------------------------------------
# Completion markers (fingerprint_file, is_done, mark_done) and fail_with_logs: utils/lib/stages.sh. A .done
# file holds the settings the work was made with (commands and config checksums); a marker with other settings
# is not trusted silently.
marker_hint="rerun with --overwrite true to redo it, or give another --tag/--pretrain_tag/--dumpdir"
# shellcheck source=utils/lib/stages.sh
. utils/lib/stages.sh

launch() {  # <what> <runner, e.g. "run.pl --gpu 1"> <log> <command>...: logs and runs it; on failure shows the log
  local what=$1 runner=$2 logfile=$3
  shift 3
  log "$what: $runner $logfile $(printf '%q ' "$@")"
  # The runner string is split into words on purpose (Kaldi convention: "queue.pl --mem 4G").
  # shellcheck disable=SC2086
  $runner "$logfile" "$@" || fail_with_logs "$what" "$logfile"
}

write_replay() {  # <exp-dir> <stage>: <exp-dir>/run.sh reruns that stage with this run's options
  mkdir -p "$1"
  {
    echo "#!/usr/bin/env bash"
    echo "# Replays stage $2 with the options of the run that made this directory (written $(date '+%F %T'))."
    echo "# Extra options are appended, e.g. --overwrite true to redo it."
    echo "cd $(printf '%q' "$PWD") || exit 1"
    echo "${replay_command}--stage $2 --stop_stage $2 \"\$@\""
  } > "$1/run.sh.tmp"
  chmod +x "$1/run.sh.tmp"
  mv "$1/run.sh.tmp" "$1/run.sh"
}

# Training launcher: one process on CPU or one GPU, torchrun with one process per GPU otherwise.
# Several nodes: the scheduler allocates them (slurm.pl --num-nodes); one node asks for nothing more, so
# queue configs that do not describe num_nodes keep working. Several processes per node ask for the CPUs of
# each (--procs-per-node: --num-threads CPUs per process).
nodes_opt=""
[ "$num_nodes" -eq 1 ] || nodes_opt=" --num-nodes $num_nodes"
[ "$ngpu" -le 1 ] || nodes_opt+=" --procs-per-node $ngpu"

train_launcher() {  # <module> -> words of the command before the module's options
  if [ "$num_nodes" -gt 1 ]; then
    local device=cuda
    [ "$ngpu" -gt 0 ] || device=cpu
    echo "utils/torchrun_nodes.sh --nnodes $num_nodes --nproc_per_node $(( ngpu > 0 ? ngpu : 1 )) -m $1 --device $device"
  elif [ "$ngpu" -gt 1 ]; then
    echo "torchrun --standalone --nproc_per_node $ngpu -m $1 --device cuda"
  elif [ "$ngpu" -eq 1 ]; then
    echo "python -m $1 --device cuda"
  else
    echo "python -m $1 --device cpu"
  fi
}

# One training job of stage 3 or 4: skipped when complete with these settings; otherwise run through
# $cuda_cmd (resuming from its newest checkpoint), and complete only when it wrote <exp-dir>/model.pt.
run_training_job() {  # <exp-dir> <stage> <what> <module> <log> <fingerprint> <module options>...
  local exp_dir=$1 stage_no=$2 what=$3 module=$4 logfile=$5 fingerprint=$6
  shift 6
  if is_done "$exp_dir" "$fingerprint"; then
    log "Stage $stage_no: $exp_dir is complete; skipping"
    return 0
  fi
  [ "$overwrite" = false ] || rm -rf "$exp_dir"
  write_replay "$exp_dir" "$stage_no"
  # shellcheck disable=SC2046
  launch "Stage $stage_no: $what" "${cuda_cmd} --gpu $ngpu$nodes_opt" "$logfile" $(train_launcher "$module") "$@"
  [ -f "$exp_dir/model.pt" ] || die "$what finished without writing $exp_dir/model.pt"
  mark_done "$exp_dir" "$fingerprint"
}

# Feature files: every set's are in one pool, shared by the sets and kept by utils/make_fbank_pool.sh.
feats_pool=$dumpdir/fbank_pool
# An imported --init (maskspec-import) records its source's front end: features as that source computed them
# (e.g. the MaskSpec authors' 32 kHz centred STFT), in feature folders of their own, so that encoders of several
# sources are fine-tuned side by side in one recipe directory (egs/TEMPLATE/scripts/compare_encoders.sh).
# An --init that does not exist yet (e.g. stages 1-2 before the AudioSet recipe's stage 3) is stage 4's to report.
# torch.save stores the pickle uncompressed: a file without the key's name records no front end (no python start).
if [ "$init_front_end" = true ] && [ -n "$init" ] && [ "$init" != none ] && [ -f "$init" ] \
  && { in_stages 2 || in_stages 4 || in_stages 5; } && LC_ALL=C grep -q -a -F front_end "$init"; then
  mkdir -p "$dumpdir"
  fbank_tmp=$(mktemp "$dumpdir/.front_end.XXXXXX")
  front_end=$(python -m maskspec.bin.front_end --model "$init" --fbank_config "$fbank_tmp") \
    || { rm -f "$fbank_tmp"; die "--init $init: cannot read its front end (see above)"; }
  if [ -n "$front_end" ]; then
    fbank_config=$dumpdir/fbank_$front_end.yaml
    cmp -s "$fbank_tmp" "$fbank_config" || mv "$fbank_tmp" "$fbank_config"
    feats_root=$dumpdir/fbank_$front_end
    feats_pool=$dumpdir/fbank_${front_end}_pool
    log "--init $init is an import with the $front_end front end: features with $fbank_config in $feats_root" \
      "(--init_front_end false: --fbank_config)"
  fi
  rm -f "$fbank_tmp"
fi

log "${replay_command}"
log "sets: ${all_sets[*]:-none}; pre-training: $run_pretrain; fine-tuning from: ${init_checkpoint}"

# ---------------------------------------------------------------------------------------------------------
if in_stages 1; then
  log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
  [ -x local/data.sh ] || die "local/data.sh is missing or not executable"
  # One marker per set (data/<set>/.done): recipes that write differently named sets with other options
  # (e.g. egs/mini --seed) do not clash, while a set remade with other options is caught.
  fingerprint="local/data.sh ${local_data_opts}
$(fingerprint_file local/data.sh)"
  complete=true
  for dset in ${all_sets[@]+"${all_sets[@]}"}; do
    is_done "$datadir/$dset" "$fingerprint" || { complete=false; break; }
  done
  if [ "$complete" = true ]; then
    log "Stage 1: ${all_sets[*]} in $datadir are complete (.done); skipping (--overwrite true redoes them)"
  else
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts} || die "local/data.sh ${local_data_opts} failed (its messages are above)"
  fi
  for dset in ${all_sets[@]+"${all_sets[@]}"}; do
    [ -d "$datadir/$dset" ] || die "local/data.sh did not write $datadir/$dset (a set this run needs)"
    opts=(--no-feats)
    [ -f "$datadir/$dset/utt2label" ] || opts+=(--no-labels)
    utils/validate_data_dir.sh "${opts[@]}" "$datadir/$dset" >&2 || die "$datadir/$dset is not a valid data directory"
    [ "$complete" = true ] || mark_done "$datadir/$dset" "$fingerprint"
  done
  if [ -n "$token_type" ]; then
    text=$datadir/$train_set/text
    [ -f "$text" ] || die "--token_type $token_type needs transcripts: no $text"
    token_opts=(--token_type "$token_type")
    [ "$token_type" = char ] || token_opts+=(--nbpe "$nbpe" --bpemode "$bpemode")
    [ "$token_type" = char ] || [ "$nbpe_fallback" = false ] || token_opts+=(--nbpe_fallback true)
    fingerprint="maskspec.bin.token_list ${token_opts[*]}
$(fingerprint_file "$text")"
    if is_done "$token_dir" "$fingerprint"; then
      log "Stage 1: token list $token_dir is complete; skipping"
    else
      mkdir -p "$token_dir"
      launch "Stage 1: token list of $text" "$train_cmd" "$token_dir/log/token_list.log" \
        python -m maskspec.bin.token_list --text "$text" --output_dir "$token_dir" "${token_opts[@]}"
      grep -e 'token rate' -e 'does not fit' "$token_dir/log/token_list.log" >&2 || true
      mark_done "$token_dir" "$fingerprint"
    fi
  fi
fi

# ---------------------------------------------------------------------------------------------------------
if in_stages 2; then
  log "Stage 2: fbank features ($fbank_config) of ${#all_sets[@]} sets into $feats_root (files in $feats_pool)"
  for dset in ${all_sets[@]+"${all_sets[@]}"}; do
    [ -f "$datadir/$dset/wav.scp" ] || die "no $datadir/$dset/wav.scp: run stage 1 first"
  done
  if [ "$check_space" = true ]; then
    # Before hours of extraction: the clips no complete set has yet (all with --overwrite true) must fit.
    space_opts=()
    [ "$overwrite" = true ] || space_opts+=(--feats_root "$feats_root")
    python -m maskspec.bin.feats_space --fbank_config "$fbank_config" --filetype "$feats_filetype" \
      --dtype "$feats_dtype" --dir "$feats_pool" ${space_opts[@]+"${space_opts[@]}"} \
      ${all_sets[@]+"${all_sets[@]/#/$datadir/}"} \
      || die "stage 2: not enough disk space for the features, or no estimate (see above; --check_space false skips)"
  fi
  utils/make_fbank_pool.sh --nj "$nj" --cmd "$train_cmd" --fbank_config "$fbank_config" \
    --filetype "$feats_filetype" --dtype "$feats_dtype" --skip_bad "$skip_bad_audio" --reuse "$feats_reuse" \
    --overwrite "$overwrite" "$datadir" "$feats_root" "$feats_pool" ${all_sets[@]+"${all_sets[@]}"} \
    || die "stage 2: feature extraction failed (its messages are above)"

  # Normalisation statistics: pre-training and each fine-tuning training set measure their own.
  stats_sets=()
  [ "$run_pretrain" = false ] || [ -z "$pretrain_set" ] || stats_sets+=("$pretrain_set")
  # shellcheck disable=SC2206
  stats_sets+=($train_sets)
  for dset in ${stats_sets[@]+"${stats_sets[@]}"}; do
    dst=$feats_root/$dset
    if [ -f "$dst/stats.json" ] && [ "$overwrite" = false ] && [ "$dst/stats.json" -nt "$dst/feats.scp" ]; then
      log "Stage 2: $dst/stats.json exists; skipping"
      continue
    fi
    opts=()
    [ "$stats_max_utts" -eq 0 ] || opts+=(--max_utts "$stats_max_utts")
    launch "Stage 2: global mean/std of $dst" "$train_cmd" "$dst/log/compute_stats.log" \
      python -m maskspec.bin.compute_stats --data_dir "$dst" ${opts[@]+"${opts[@]}"} --output "$dst/stats.json"
  done
fi

# ---------------------------------------------------------------------------------------------------------
if in_stages 3; then
  if [ "$run_pretrain" = false ]; then
    log "Stage 3: skipped (--pretrain $pretrain with --init '$init'; --pretrain true --init '' pre-trains here)"
  else
    train_data=$feats_root/$pretrain_set
    for f in "$train_data/.done" "$feats_root/$pretrain_valid_set/.done" "$train_data/stats.json"; do
      [ -f "$f" ] || die "stage 3 needs $f: run stage 2 first"
    done
    args=(--config "$pretrain_config" --train_data "$train_data" --valid_data "$feats_root/$pretrain_valid_set"
          --exp_dir "$pretrain_exp")
    # shellcheck disable=SC2206
    args+=($pretrain_args)
    fingerprint="maskspec.bin.pretrain ${args[*]}
$(fingerprint_file "$pretrain_config")
$(fingerprint_file "$train_data/feats.scp")"
    run_training_job "$pretrain_exp" 3 "pre-training" maskspec.bin.pretrain "$pretrain_exp/log/pretrain.log" \
      "$fingerprint" "${args[@]}"
  fi
fi

# ---------------------------------------------------------------------------------------------------------
# The fine-tuned models (folder names under $finetune_exp); see the help text.
models=()
if [ "$init" = none ]; then
  models+=(scratch)
else
  models+=(pretrained)
  [ "$linear_probe" = false ] || models+=(linear_probe)
  [ "$scratch_baseline" = false ] || models+=(scratch)
fi

if in_stages 4; then
  if [ "$init" != none ]; then
    [ -f "$init_checkpoint" ] || die "no pre-trained checkpoint $init_checkpoint (run stage 3 or give --init)"
    # Size and time stand for the content: a new stage-3 result makes the fine-tuned models stale.
    init_fingerprint="$init_checkpoint $(stat -L -c '%s %Y' "$init_checkpoint")"
  else
    init_fingerprint=none
  fi
  for model in "${models[@]}"; do
    for fold in $fold_list; do
      f=$fold; [ "$f" != none ] || f=""
      train_data=$feats_root/$(fold_set "$train_set" "$f")
      valid_data=$feats_root/$(fold_set "$valid_set" "$f")
      model_dir=$finetune_exp/$model$(fold_suffix "$fold")
      for d in "$train_data" "$valid_data"; do
        [ -f "$d/.done" ] || die "stage 4 needs $d: run stage 2 first"
      done
      config=$finetune_config
      [ "$model" != linear_probe ] || config=$linear_probe_config
      args=(--config "$config" --train_data "$train_data" --valid_data "$valid_data" --exp_dir "$model_dir")
      if [ "$model" = scratch ]; then args+=(--init none); else args+=(--init "$init_checkpoint"); fi
      # shellcheck disable=SC2206
      args+=($finetune_args)
      # shellcheck disable=SC2206
      [ "$model" != linear_probe ] || args+=(--freeze_encoder true $linear_probe_args)
      if [ -n "$token_type" ]; then
        [ -f "$token_dir/.done" ] || die "no token list $token_dir: run stage 1 first"
        args+=("${ctc_args[@]}")
      fi
      fingerprint="maskspec.bin.finetune ${args[*]}
$(fingerprint_file "$config")
$(fingerprint_file "$train_data/feats.scp")
init: $([ "$model" = scratch ] && echo none || echo "$init_fingerprint")"
      [ -z "$token_type" ] || fingerprint+=$'\n'"$(fingerprint_file "$token_dir/tokens.txt")"
      run_training_job "$model_dir" 4 "fine-tuning $model${f:+ (fold $f)}" maskspec.bin.finetune \
        "$model_dir/log/finetune.log" "$fingerprint" "${args[@]}"
    done
  done
fi

# ---------------------------------------------------------------------------------------------------------
if in_stages 5; then
  log "Stage 5: scoring ${models[*]} on ${test_sets}"
  if [ "$ngpu" -gt 0 ]; then score_device=cuda; else score_device=cpu; fi
  for model in "${models[@]}"; do
    for test_pattern in $test_sets; do
      results=()
      for fold in $fold_list; do
        f=$fold; [ "$f" != none ] || f=""
        model_dir=$finetune_exp/$model$(fold_suffix "$fold")
        test_set=$(fold_set "$test_pattern" "$f")
        out=$model_dir/decode_$test_set
        [ -f "$model_dir/.done" ] || die "no fine-tuned model in $model_dir: run stage 4 first"
        [ -f "$feats_root/$test_set/.done" ] || die "no features for $test_set: run stage 2 first"
        args=(--model "$model_dir/model.pt" --data "$feats_root/$test_set" --output_dir "$out")
        # shellcheck disable=SC2206
        args+=($score_args)
        fingerprint="maskspec.bin.score ${args[*]}
$(fingerprint_file "$model_dir/model.pt")
$(fingerprint_file "$feats_root/$test_set/feats.scp")"
        results+=("$out/results.json")
        if is_done "$out" "$fingerprint"; then
          log "Stage 5: $out is complete; skipping"
          continue
        fi
        rm -rf "$out"
        mkdir -p "$out"
        launch "Stage 5: scoring $model${f:+ (fold $f)} on $test_set" "${decode_cmd} --gpu $(min "$ngpu" 1)" \
          "$out/log/score.log" python -m maskspec.bin.score "${args[@]}" --device "$score_device"
        [ -f "$out/results.json" ] || die "scoring finished without writing $out/results.json"
        mark_done "$out" "$fingerprint"
      done
      if [ -n "$folds" ]; then
        # One result over the folds: decode_<test pattern with {fold} -> "folds">.
        out=$finetune_exp/$model/decode_${test_pattern//\{fold\}/s}
        mkdir -p "$out"
        launch "Stage 5: mean over folds of $model on $test_pattern" "$train_cmd" "$out/log/aggregate.log" \
          python -m maskspec.bin.aggregate_results --output "$out/results.json" "${results[@]}"
      fi
    done
  done
  # One table per fine-tuning experiment, models side by side; then one file for all experiments.
  compare_args=()
  for model in "${models[@]}"; do
    for test_pattern in $test_sets; do
      if [ -n "$folds" ]; then
        compare_args+=("$model" "${test_pattern//\{fold\}/s}" "$finetune_exp/$model/decode_${test_pattern//\{fold\}/s}/results.json")
      else
        compare_args+=("$model" "$test_pattern" "$finetune_exp/$model/decode_$test_pattern/results.json")
      fi
    done
  done
  python "$MAIN_ROOT/egs/TEMPLATE/scripts/compare_results.py" \
    --title "$finetune_exp" --output "$finetune_exp/RESULTS.md" "${compare_args[@]}" \
    || die "could not write $finetune_exp/RESULTS.md"
  # a temporary name of its own: runs of one recipe with other tags may finish at the same moment
  results_tmp=$(mktemp "$expdir/RESULTS.md.XXXXXX")
  {
    echo "<!-- collected from $expdir/finetune_*/RESULTS.md by $0 on $(date '+%F %T') -->"
    for f in "$expdir"/finetune_*/RESULTS.md; do
      [ -f "$f" ] || continue
      cat "$f"
      echo
    done
  } > "$results_tmp"
  chmod 644 "$results_tmp"  # mktemp's 600 would survive the rename
  mv "$results_tmp" "$expdir/RESULTS.md"
  log "Stage 5: results in $finetune_exp/RESULTS.md (all experiments: $expdir/RESULTS.md)"
fi

log "Finished stages $stage-$stop_stage in ${SECONDS} s."
if [ -f "$expdir/RESULTS.md" ]; then log "Results: $expdir/RESULTS.md"; fi
if [ -d "$pretrain_exp" ]; then
  log "Pre-training: log $pretrain_exp/log/pretrain.log, reconstructions $pretrain_exp/images/"
fi
if [ -d "$finetune_exp" ]; then log "Fine-tuning: logs $finetune_exp/*/log/finetune.log"; fi
log "TensorBoard: tensorboard --logdir $expdir"
