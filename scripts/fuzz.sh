#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each (default 60), corpus in a temp dir.
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-60}
status=0
for f in "$build"/tests/fuzz/*_fuzz; do
  [ -x "$f" ] || continue
  corpus=$(mktemp -d)
  echo "fuzz: $(basename "$f") for ${secs}s"
  if ! "$f" -max_total_time="$secs" -max_len=65536 "$corpus" 2>"$corpus.log"; then
    echo "fuzz: $(basename "$f") FAILED; log: $corpus.log" >&2
    tail -40 "$corpus.log" >&2
    status=1
  else
    grep -E "^Done|#[0-9]+.*DONE" "$corpus.log" | tail -1 || true
  fi
done
exit $status
