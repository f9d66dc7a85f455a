# Environment of this recipe, sourced by run.sh and local/*.sh (symlinks resolved, so a linked copy of the
# recipe finds the repository): the project's venv and utils/ first on PATH,
# C collation for every sort (data-directory files are sorted in byte order).
MAIN_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export MAIN_ROOT
if [ -x "$MAIN_ROOT/tools/venv/bin/python" ]; then
  export PATH="$MAIN_ROOT/tools/venv/bin:$PATH"
fi
export PATH="$MAIN_ROOT/utils:$PATH"
export PYTHONPATH="$MAIN_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LC_ALL=C
export PYTHONUNBUFFERED=1
