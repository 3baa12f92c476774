#!/usr/bin/env bash
# make demo: a simulated service watched live (scripts/demo.py --help); args go to demo.py.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/demo.py" --build "${1:-build}" "${@:2}"
