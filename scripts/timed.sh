#!/usr/bin/env bash
# Runs one step of `make test` and says how long it took:
#
#   scripts/timed.sh NAME COMMAND [ARG...]
#
# prints "timing: NAME: S s, passed|FAILED (load average before: a b c, after: x y z)" when COMMAND ends,
# appends the same line to $TIMINGS_FILE when that is set (`make test` sets it and prints the file at the
# end), and exits with COMMAND's status.
set -uo pipefail
name=$1
shift
load() { cut -d' ' -f1-3 /proc/loadavg; }
before=$(load)
started=$(date +%s)
"$@"
status=$?
result=passed
[[ $status -eq 0 ]] || result=FAILED
line="timing: $name: $(( $(date +%s) - started )) s, $result (load average before: $before, after: $(load))"
echo "$line"
if [[ -n "${TIMINGS_FILE:-}" ]]; then
  mkdir -p "$(dirname "$TIMINGS_FILE")"
  echo "$line" >>"$TIMINGS_FILE"
fi
exit $status
