# Option parser for MaskSpec shell scripts, Kaldi convention.  Source it, do not run it:
#
#   stage=1            # first stage to run
#   feat_type=fbank    # an option named --feat-type on the command line
#   use_gpu=false      # booleans take exactly "true" or "false"
#   help_message="Usage: $0 [options] <data-dir>
#   e.g.: $0 --stage 2 data/train"
#   . utils/parse_options.sh
#   # "$@" now holds only the positional arguments.
#
# Rules:
#   --name value and --name=value set the shell variable "name", dashes turned into underscores; only a
#   variable the script already declared can be set, anything else is an error naming the option.
#   A variable whose current value is true or false only accepts true or false.
#   --config FILE (repeatable) is applied before every other option, whatever its position, so the command
#   line overrides it.  FILE holds "--name value" lines and/or shell assignments; "#" starts a comment.
#   --help or -h prints $help_message and exits 0.  Parsing stops at the first argument that is not an
#   option, or after "--".
# Works under `set -euo pipefail`.  Internal names start with __po_ and are removed at the end.

__po_fail() {
  echo "$0: $*" >&2
  exit 1
}

# Assigns a value to a declared variable after checking the option name and boolean values.
# $1: option as written (for messages), $2: value.
__po_set() {
  local __po_opt=$1 __po_value=$2 __po_name __po_current
  __po_name=${__po_opt#--}
  __po_name=${__po_name//-/_}
  if [[ ! $__po_name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    __po_fail "invalid option $__po_opt"
  fi
  if [[ $__po_name == __po_* ]] || [ -z "${!__po_name+set}" ]; then
    __po_fail "unknown option $__po_opt (this script declares no variable '$__po_name'; see --help)"
  fi
  __po_current=${!__po_name}
  if [[ $__po_current == true || $__po_current == false ]] && [[ $__po_value != true && $__po_value != false ]]; then
    __po_fail "option $__po_opt takes \"true\" or \"false\", got \"$__po_value\""
  fi
  printf -v "$__po_name" '%s' "$__po_value"
}

# Applies one --config file: "--name value" lines go through __po_set, the rest is shell code run in order.
# Every local starts with __po_ so that shell code in the file cannot assign to a local by accident.
__po_apply_config() {
  local __po_file=$1 __po_line __po_lineno=0 __po_text __po_opt __po_value __po_code=""
  [ -f "$__po_file" ] && [ -r "$__po_file" ] || __po_fail "cannot read config file '$__po_file'"
  while IFS= read -r __po_line || [ -n "$__po_line" ]; do
    __po_lineno=$((__po_lineno + 1))
    __po_text=${__po_line#"${__po_line%%[![:space:]]*}"}
    if [[ $__po_text != --* ]]; then
      __po_code+="$__po_line"$'\n'
      continue
    fi
    # Run the shell code gathered so far first, so that assignments and options keep their order.
    if [ -n "$__po_code" ]; then
      eval "$__po_code" || __po_fail "$__po_file: error in the shell code before line $__po_lineno"
      __po_code=""
    fi
    __po_text=${__po_text%%[[:space:]]#*}
    __po_text=${__po_text%"${__po_text##*[![:space:]]}"}
    if [[ $__po_text == *=* && ${__po_text%%=*} != *[[:space:]]* ]]; then
      __po_opt=${__po_text%%=*}
      __po_value=${__po_text#*=}
    else
      __po_opt=${__po_text%%[[:space:]]*}
      [ "$__po_opt" != "$__po_text" ] || __po_fail "$__po_file:$__po_lineno: option $__po_opt has no value"
      __po_value=${__po_text#"$__po_opt"}
      __po_value=${__po_value#"${__po_value%%[![:space:]]*}"}
    fi
    # One pair of quotes around the whole value is syntax, as it would be on a command line.
    if [[ ${#__po_value} -ge 2 && ( $__po_value == \"*\" || $__po_value == \'*\' ) ]]; then
      __po_value=${__po_value:1:${#__po_value}-2}
    fi
    [ "$__po_opt" != "--config" ] || __po_fail "$__po_file:$__po_lineno: --config cannot be nested"
    __po_set "$__po_opt" "$__po_value"
  done < "$__po_file"
  if [ -n "$__po_code" ]; then
    eval "$__po_code" || __po_fail "$__po_file: error in its shell code"
  fi
}

# Pass 1: the config files, in the order given, before any other option.
__po_args=("$@")
__po_i=0
while [ "$__po_i" -lt "${#__po_args[@]}" ]; do
  __po_arg=${__po_args[$__po_i]}
  case "$__po_arg" in
    --) break ;;
    --config=*) __po_apply_config "${__po_arg#--config=}" ;;
    --config)
      [ $((__po_i + 1)) -lt "${#__po_args[@]}" ] || __po_fail "option --config needs a value"
      __po_i=$((__po_i + 1))
      __po_apply_config "${__po_args[$__po_i]}"
      ;;
    --help | -h) break ;;  # help needs no config, so a bad one must not hide it
    --*=*) ;;
    --*) __po_i=$((__po_i + 1)) ;;  # skip its value, which may itself start with --
    *) break ;;
  esac
  __po_i=$((__po_i + 1))
done

# Pass 2: every other option, consuming "$@".
while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h)
      if [ -n "${help_message:-}" ]; then
        printf '%s\n' "$help_message"
      else
        echo "$0: no help message is defined for this script"
      fi
      exit 0
      ;;
    --)
      shift
      break
      ;;
    --config=*) shift ;;
    --config) shift 2 ;;
    --*=*)
      __po_set "${1%%=*}" "${1#*=}"
      shift
      ;;
    --*)
      [ $# -ge 2 ] || __po_fail "option $1 needs a value"
      __po_set "$1" "$2"
      shift 2
      ;;
    *) break ;;
  esac
done

unset -v __po_args __po_i __po_arg
unset -f __po_fail __po_set __po_apply_config
true
