#!/usr/bin/env bash
# What the stage script (egs/TEMPLATE/maskspec.sh) and the tools it runs for a stage (utils/make_fbank_pool.sh)
# share: .done markers holding the settings a piece of work was made with, and the end of failed jobs' logs.
# Source it: `. utils/lib/stages.sh`. The caller defines log <message> and die <message> (print, and exit 1),
# and the variable overwrite (true: redo work that a marker calls complete); marker_hint, if set, replaces the
# advice given when a marker holds other settings.

# Run on its own it has nothing to do: say so instead of returning silently.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "$0: a library of egs/TEMPLATE/maskspec.sh and utils/make_fbank_pool.sh, not a command" >&2
  exit 1
fi

fingerprint_file() {  # <file>: its name and checksum, so an edited config changes the fingerprint
  [ -e "$1" ] || { echo "$1 (missing)"; return; }
  echo "$1 $(md5sum < "$1" | cut -d' ' -f1)"
}

is_done() {  # <dir> <fingerprint>: 0 if complete with these settings, 1 if to be (re)done
  local dir=$1 fingerprint=$2
  [ -f "$dir/.done" ] || return 1
  if [ "$overwrite" = true ]; then
    log "--overwrite true: redoing $dir"
    return 1
  fi
  if [ "$(cat "$dir/.done")" != "$fingerprint" ]; then
    echo "$0: $dir was made with other settings than this run's:" >&2
    diff <(cat "$dir/.done") <(echo "$fingerprint") | sed 's/^/    /' >&2 || true
    die "${marker_hint:-rerun with --overwrite true to redo it}"
  fi
  return 0
}

mark_done() {  # <dir> <fingerprint>
  printf '%s\n' "$2" > "$1/.done.tmp"
  mv "$1/.done.tmp" "$1/.done"
}

# Prints the end of the logs of failed jobs (run.pl/queue.pl/slurm.pl logs end with "# Ended (code N)"),
# then exits. <log> may hold JOB or shell wildcards.
fail_with_logs() {  # <what> <log-pattern>
  local what=$1 pattern=${2//JOB/*} f shown=0
  echo "$0: $what failed" >&2
  for f in $pattern; do
    [ -f "$f" ] || continue
    ! grep -q '^# Ended (code 0)' "$f" || continue
    echo "$0: ---- last lines of $f ----" >&2
    tail -n 20 "$f" >&2
    shown=$((shown + 1))
    [ "$shown" -lt 3 ] || break
  done
  [ "$shown" -gt 0 ] || echo "$0: no failed log found matching $2" >&2
  exit 1
}
