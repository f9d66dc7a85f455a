#!/usr/bin/env bash
# Fine-tunes several pre-trained encoders with one recipe and one config and writes one table comparing them.
# Run it from a recipe directory (egs/<corpus>); each <tag>=<init> runs
#   ./run.sh --init <init> --tag <tag> [recipe options]
# (an encoder imported by maskspec-import gets its source's features: maskspec.sh --init_front_end), then the
# scores of every tag's "pretrained" model on every test set (the mean over folds for fold recipes) go into one
# Markdown table by compare_results.py, the tool behind each experiment's RESULTS.md.
set -euo pipefail

usage="Usage: $0 [--output FILE] <tag>=<init> [<tag>=<init> ...] [-- <run.sh options>]
Fine-tunes each <init> (a model file: maskspec-import's output, or a stage-3 model.pt of this project) with
./run.sh --init <init> --tag <tag> <run.sh options>, one after the other, then writes one table of their
test scores to --output (default <expdir>/COMPARE.md; --expdir among the run.sh options is honoured).
e.g.: (cd egs/esc50 && ../TEMPLATE/scripts/compare_encoders.sh \\
         authors=\$PWD/maskspec_pretrained.pt audiomae=\$PWD/audiomae_pretrained.pt eat=\$PWD/eat_base30.pt \\
         ours=\$PWD/../audioset/exp/pretrain_base/model.pt -- --ngpu 1)"

die() {
  echo "$0: $*" >&2
  exit 1
}

output=""
pairs=()
while [ $# -gt 0 ]; do
  case $1 in
    --help | -h) echo "$usage"; exit 0 ;;
    --output) [ $# -ge 2 ] || die "--output needs a value"; output=$2; shift 2 ;;
    --) shift; break ;;
    *=*) pairs+=("$1"); shift ;;
    *) die "unexpected argument '$1' (give <tag>=<init> pairs, then -- and the run.sh options; see --help)" ;;
  esac
done
[ ${#pairs[@]} -gt 0 ] || die "no <tag>=<init> pairs given (see --help)"
[ -x ./run.sh ] && [ -f ./path.sh ] || die "no ./run.sh here: run this from a recipe directory (egs/<corpus>)"
# shellcheck source=/dev/null
. ./path.sh  # the project's python, for the table (run.sh sources it for itself)

expdir=exp
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[i]}" = --expdir ] && [ $((i + 1)) -lt ${#args[@]} ]; then expdir=${args[i + 1]}; fi
done
[ -n "$output" ] || output=$expdir/COMPARE.md

tags=()
for pair in "${pairs[@]}"; do
  tag=${pair%%=*}
  init=${pair#*=}
  [[ $tag =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad tag '$tag' in '$pair' (letters, digits and _.- only)"
  [ -n "$init" ] && [ -f "$init" ] || die "$pair: no such model file '$init'"
  for t in ${tags[@]+"${tags[@]}"}; do [ "$t" != "$tag" ] || die "tag '$tag' is given twice"; done
  tags+=("$tag")
done

for pair in "${pairs[@]}"; do
  tag=${pair%%=*}
  init=${pair#*=}
  echo "$0: fine-tuning $init as --tag $tag" >&2
  ./run.sh --init "$init" --tag "$tag" "$@" || die "./run.sh --init $init --tag $tag failed (its messages are above)"
done

# Every tag's scores: <expdir>/finetune_<tag>/pretrained/decode_<set>/results.json (for fold recipes the mean
# over folds, decode_<set pattern with {fold} -> s>; the single folds are one level lower and not taken).
entries=()
for tag in "${tags[@]}"; do
  found=false
  for f in "$expdir/finetune_$tag/pretrained"/decode_*/results.json; do
    [ -f "$f" ] || continue
    set_name=$(basename "$(dirname "$f")")
    entries+=("$tag" "${set_name#decode_}" "$f")
    found=true
  done
  [ "$found" = true ] || die "no scores in $expdir/finetune_$tag/pretrained/decode_*/results.json (did stage 5 run?)"
done
mkdir -p "$(dirname "$output")"
python "$(dirname "$0")/compare_results.py" --title "Encoders compared: ${tags[*]} ($(basename "$PWD"))" \
  --output "$output" "${entries[@]}" || die "could not write $output"
echo "$0: $output" >&2
cat "$output"
