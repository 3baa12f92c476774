#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD_DIR (make fuzz builds them into build-fuzz with clang).
#   scripts/fuzz.sh [BUILD_DIR] [SECONDS] [RUNS]   each target for SECONDS (default 60) or RUNS
#                                                  executions, whichever ends first
#   FUZZ_TARGETS="wire_fuzz render_time_fuzz" scripts/fuzz.sh ...   only those targets
#   FUZZ_MERGE=1 scripts/fuzz.sh ...   afterwards, merge what was found into tests/fuzz/corpus/
# Each target starts from its committed corpus (tests/fuzz/corpus/<target>/, read only) and
# writes what it finds into a temp dir. A crash, leak, timeout or UBSan report fails the run and
# leaves the input next to the log; add it to the corpus as a regression input once fixed.
# `make test` replays the committed corpora without clang (tests/fuzz/replay_main.cpp).
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-60}
runs=${3:--1}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0

max_len_of() {
  case "$1" in
    render_time_fuzz) echo 64 ;;
    render_target_fuzz) echo 512 ;;
    *) echo 65536 ;;
  esac
}

for f in "$build"/tests/fuzz/*_fuzz; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  seeds="$root/tests/fuzz/corpus/$name"
  mkdir -p "$seeds"
  found=$(mktemp -d "${TMPDIR:-/tmp}/statherd-fuzz-$name-XXXXXX")
  log="$found.log"
  echo "fuzz: $name for ${secs}s or $runs runs (log $log)"
  if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$f" -max_total_time="$secs" -runs="$runs" -max_len="$(max_len_of "$name")" \
             -timeout=25 -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$found." \
             "$found" "$seeds" >"$log" 2>&1; then
    echo "fuzz: $name FAILED; log: $log; input: $found.crash-* (or .timeout-*, .oom-*)" >&2
    tail -40 "$log" >&2
    status=1
    continue
  fi
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  took=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+' || echo "$secs")
  echo "fuzz: $name ok: $execs executions in ${took}s, no finding"
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    "$f" -merge=1 -max_len="$(max_len_of "$name")" "$seeds" "$found" >>"$log" 2>&1
    echo "fuzz: $name corpus now $(ls "$seeds" | wc -l) inputs"
  fi
done
exit $status
