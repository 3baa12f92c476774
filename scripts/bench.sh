#!/usr/bin/env bash
# make bench: every benchmark, each printing a table with its reference side by side.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" all  # the references: prometheus_client, graphite-web, carbon
echo "== agent read cost (whole process) =="
/usr/bin/python3 "$root/bench/agent_once.py" "$build"
echo
echo "== server ingest + rollup =="
"$build/bench/server_ingest_bench"
"$build/bench/server_ingest_bench" 30 20 50 100 1   # the same with per-interval sketches
echo
echo "== memory store (/render history): bytes per point and per path, old slots vs chunks =="
"$build/bench/memory_store_bench"
echo
echo "== the daemon over HTTP, default config (WAL fsync on): the same batches =="
"$build/bench/server_http_bench" "$build/statherd-server" 30
"$build/bench/server_http_bench" "$build/statherd-server" 30 20 50 100 1
echo
echo "== bench/fleet: a paced fleet against the daemon (issue #10's table) =="
"$build/bench/fleet_bench" "$build/statherd-server"
echo
echo "== bench/cluster_fleet: the fleet against 1, 2 and 3 servers in one etcd cluster (issue #13) =="
"$build/bench/cluster_fleet_bench" "$build/statherd-server"
echo
echo "== what first touching memory costs on this machine (the fleet's first minute pays it) =="
"$build/bench/first_touch_bench" 256 5
echo
echo "== Python v2 writer cost per call (statherd vs prometheus_client) =="
/usr/bin/python3 "$root/bench/v2_writer_bench.py"
echo
echo "== prometheus_client multiprocess collection (agent vs MultiProcessCollector) =="
/usr/bin/python3 "$root/bench/prom_multiproc_bench.py" "$build"
echo
echo "== server outputs: /metrics, remote_write, Graphite, /render (vs prometheus_client, Python) =="
/usr/bin/python3 "$root/bench/outputs_bench.py" "$build"
echo
echo "== /render function queries (vs graphite-web 1.1.8 over the same data) =="
/usr/bin/python3 "$root/bench/render_bench.py" "$build"
