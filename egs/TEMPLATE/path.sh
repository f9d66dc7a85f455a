# Environment of a MaskSpec recipe; sourced by run.sh and maskspec.sh from the recipe directory (egs/<corpus>).
# Recipes link or copy this file; it finds the repository from its own location, two levels up.
MAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export MAIN_ROOT
if [ ! -x "$MAIN_ROOT/tools/venv/bin/python" ]; then
  echo "path.sh: no Python environment in $MAIN_ROOT/tools/venv: run 'make -C $MAIN_ROOT/tools' first" >&2
  return 1 2> /dev/null || exit 1
fi
export PATH=$MAIN_ROOT/utils:$MAIN_ROOT/tools/venv/bin:$PATH
export VIRTUAL_ENV=$MAIN_ROOT/tools/venv
# Kaldi data directories are sorted in byte order; every sort and join must agree.
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
# Logs of background jobs should appear as they are written, not when a buffer fills.
export PYTHONUNBUFFERED=1
