#!/usr/bin/python3
"""Per-call cost of the statherd v2 writer against prometheus_client, in one run.

Each side runs in its own subprocess (so prometheus_client's multiprocess mode, which is chosen
when it is imported with PROMETHEUS_MULTIPROC_DIR set, never leaks into the other runs):

    statherd        clients/python/statherd, STATHERD_DIR = a temp dir
    prom            Debian python3-prometheus-client, single-process mode
    prom-mp         the same with PROMETHEUS_MULTIPROC_DIR = a temp dir (mmap'd .db files)

Each operation is timed as users write it (`c.inc()`, `g.set(v)`, `h.observe(0.25)` with
prometheus_client's default buckets, and `child.inc()` on a cached `c.labels("x")` child):
the minimum over several repeats of a timeit loop, in ns per call. The three sides run in
alternating rounds (statherd, prom, prom-mp, statherd, ...) and each keeps its best round, so
a burst of load on a shared machine does not favour one side. Targets (issue 3): statherd
costs no more than prometheus_client's single-process mode and at most half its multiprocess
mode. Prints a table; exit status 0 unless --strict and a target is missed (benchmarks never
gate CI).

    /usr/bin/python3 bench/v2_writer_bench.py [--number 100000] [--repeat 5] [--rounds 3] [--strict]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import timeit

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
MODES = ("statherd", "prom", "prom-mp")
OPERATIONS = (
    ("Counter.inc", "c.inc()"),
    ("Gauge.set", "g.set(7.5)"),
    ("Histogram.observe", "h.observe(0.25)"),
    ("labelled child inc", "child.inc()"),
)


def make_metrics(mode):
    """The four metrics of one side (imports happen here, inside the worker process)."""
    if mode == "statherd":
        sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
        import statherd as lib
    else:
        import prometheus_client as lib
    c = lib.Counter("bench_requests", "requests")
    g = lib.Gauge("bench_queue", "queue depth")
    h = lib.Histogram("bench_latency_seconds", "latency")
    lc = lib.Counter("bench_by_method", "requests by method", labelnames=("method",))
    return {"c": c, "g": g, "h": h, "child": lc.labels("x")}


def run_worker(mode, number, repeat):
    names = make_metrics(mode)
    result = {}
    for label, stmt in OPERATIONS:
        timer = timeit.Timer(stmt, globals=names)
        timer.timeit(number // 10)  # warm up (specialising interpreter, page faults)
        best = min(timer.repeat(repeat=repeat, number=number))
        result[label] = best / number * 1e9
    json.dump(result, sys.stdout)


def measure(mode, number, repeat):
    with tempfile.TemporaryDirectory(prefix=f"v2bench-{mode}-") as tmp:
        env = dict(os.environ)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.pop("prometheus_multiproc_dir", None)
        env["STATHERD_DIR"] = tmp
        env["STATHERD_APP"] = "v2bench"
        if mode == "prom-mp":
            env["PROMETHEUS_MULTIPROC_DIR"] = tmp
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", mode,
                              "--number", str(number), "--repeat", str(repeat)],
                             env=env, check=True, stdout=subprocess.PIPE, text=True, timeout=600)
        return json.loads(out.stdout)


def print_table(results):
    header = (f"{'operation':<20} {'statherd':>9} {'prom':>9} {'prom-mp':>9} "
              f"{'vs prom':>8} {'vs mp':>7}  target (<= prom, <= mp/2)")
    print("ns per call, min of repeats and rounds")
    print(header)
    print("-" * len(header))
    all_pass = True
    for label, _ in OPERATIONS:
        ours, prom, mp = (results[m][label] for m in MODES)
        ok = ours <= prom and ours <= mp / 2
        all_pass &= ok
        print(f"{label:<20} {ours:9.0f} {prom:9.0f} {mp:9.0f} {ours / prom:8.2f} {ours / mp:7.2f}"
              f"  {'PASS' if ok else 'FAIL'}")
    return all_pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=100_000, help="calls per timing loop")
    parser.add_argument("--repeat", type=int, default=5, help="timing loops; the minimum counts")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of all sides")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.number, args.repeat)
        return 0
    results = {mode: {} for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            for label, ns in measure(mode, args.number, args.repeat).items():
                results[mode][label] = min(ns, results[mode].get(label, ns))
    all_pass = print_table(results)
    return 1 if args.strict and not all_pass else 0


if __name__ == "__main__":
    sys.exit(main())
