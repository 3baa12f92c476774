#!/usr/bin/env bash
# make demo: server + agent + three Python writer processes, with embedded defaults.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/demo.py" --build "${1:-build}" "${@:2}"
