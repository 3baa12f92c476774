#!/usr/bin/env bash
# make test: every test of the release build (unit, then integration), then the unit tests and
# the C++ integration tests (label cpp_integration: a real etcd) under AddressSanitizer + UBSan.
# The sanitizer build compiles meanwhile, in the background at the lowest CPU and I/O priority:
# the integration tests mostly wait on intervals, so it uses the idle cores and the tests keep
# theirs (the sanitizer build alone takes ~12 min on the 2-core machine; the integration tests
# leave most of that idle).
# Its output goes to <asan build>.log, shown when it fails.
# Usage: scripts/test.sh <build dir> <asan build dir>   (from the Makefile, with MAKE set)
set -uo pipefail
build=$1
asan=$2
make_cmd=${MAKE:-make}
log="$asan.log"

nice -n 19 ionice -c 3 $make_cmd --no-print-directory build-asan ASAN_BUILD="$asan" >"$log" 2>&1 &
asan_pid=$!
# A Ctrl-C (or a CI timeout) stops the background build too.
trap 'kill -- "$asan_pid" 2>/dev/null; exit 130' INT TERM

failed=0
(cd "$build" && ctest --output-on-failure --timeout 900) || failed=1

if ! wait "$asan_pid"; then
  echo "test: the AddressSanitizer build failed; the end of $log:" >&2
  tail -n 60 "$log" >&2
  exit 1
fi
echo "test: AddressSanitizer + UBSan build done (log: $log)"
(cd "$asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -L 'unit|cpp_integration') || failed=1
exit "$failed"
