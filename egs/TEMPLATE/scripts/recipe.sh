# The shared part of a recipe's run.sh. Source it, then give run_recipe the recipe's description, its defaults
# and the command line:
#
#   . "$(dirname "$0")/../TEMPLATE/scripts/recipe.sh"
#   run_recipe "ESC-50 recipe ..." --folds "1 2 3 4 5" --train_set "train_fold{fold}" -- "$@"
#
# The defaults (before "--") come first on maskspec.sh's command line, so every option given to run.sh overrides
# them. With --help or -h, run_recipe prints the description, the defaults and maskspec.sh's own options instead.

# A value as it would be typed: bare when it is one plain word, in single quotes otherwise.
recipe_quote() {  # <value>
  if [[ $1 =~ ^[][A-Za-z0-9_./{}:=,+@%-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

run_recipe() {  # <description> [--option value]... -- <command line>...
  local description=$1 defaults=() i
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    defaults+=("$1")
    shift
  done
  if [ $# -eq 0 ] || [ $((${#defaults[@]} % 2)) -ne 0 ]; then
    echo "$0: run_recipe takes '<description> --option value ... -- \"\$@\"'" >&2
    exit 1
  fi
  shift
  [ -x ./maskspec.sh ] || { echo "$0: no ./maskspec.sh here: run the recipe from its own directory" >&2; exit 1; }
  # --help is an option, not the value of one: walk the "--name value" pairs as parse_options.sh does.
  i=1
  while [ "$i" -le $# ]; do
    case "${!i}" in
      --help | -h)
        printf '%s\n' "$description"
        echo "Defaults set by run.sh (override any on the command line):"
        for ((i = 0; i < ${#defaults[@]}; i += 2)); do
          echo "  ${defaults[i]} $(recipe_quote "${defaults[i + 1]}")"
        done
        echo
        ./maskspec.sh --help
        exit
        ;;
      --*=*) i=$((i + 1)) ;;
      --*) i=$((i + 2)) ;;
      *) break ;;
    esac
  done
  # Not exec: maskspec.sh's messages and replay scripts then name it ./maskspec.sh, as typed.
  ./maskspec.sh "${defaults[@]}" "$@"
}

# The options of the recipes on generated corpora (egs/mini, egs/mini_speech): --quick true|false and --seed N set
# the caller's variables quick and seed (their defaults set before the call); every other argument is kept, in
# order, in the array recipe_args for maskspec.sh. --help prints both and maskspec.sh's help.
recipe_quick_seed() {  # <what --quick makes smaller> "$@"
  local what=$1
  shift
  recipe_args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --quick | --seed)
        [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
        printf -v "${1#--}" '%s' "$2"
        shift 2 ;;
      --help | -h)
        echo "Usage: $0 [--quick true|false] [--seed N] [maskspec.sh options, e.g. --stage 3]"
        echo "  --quick ($quick)  $what; --seed ($seed)  corpus and training seed"
        exec ./maskspec.sh --help ;;
      *) recipe_args+=("$1"); shift ;;
    esac
  done
  [[ $quick == true || $quick == false ]] || { echo "$0: --quick takes true or false, got '$quick'" >&2; exit 1; }
  [[ $seed =~ ^[0-9]+$ ]] || { echo "$0: --seed must be a non-negative integer, got '$seed'" >&2; exit 1; }
}
