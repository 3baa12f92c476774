#!/usr/bin/python3
"""Agent read cost: `statherd-agent --once` over N mmstats v1 files x 100 fields, whole process
(start, scan, read, parse, print 100 fields x N as JSON lines to /dev/null), against the Python reference
reader (bench/mmstats_reference_reader.py, which walks the files the way the original mmstats
reader does) on the same files, in one run. Prints a table.

Usage: agent_once.py BUILD_DIR [--files 1000] [--runs 15]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import mmstats_writer as mw  # noqa: E402


def make_files(directory, n):
    attrs = {"c%d" % i: mw.CounterField(label="requests.kind%d.count" % i) for i in range(30)}
    attrs.update({"g%d" % i: mw.DoubleField(label="pool.slot%d.value" % i) for i in range(54)})
    attrs.update({"a%d" % i: mw.AverageField(label="latency.avg%d" % i) for i in range(5)})
    attrs.update({"t%d" % i: mw.TimerField(label="handler%d.time" % i) for i in range(5)})
    cls = type("BenchStats", (mw.MmStats,), attrs)   # + 6 sys.* fields = 100 fields
    keep = []
    for i in range(n):
        s = cls(path=directory, filename="benchapp-%d-%d.mmstats" % (40000 + i, 40000 + i))
        for j in range(30):
            getattr(s, "c%d" % j).incr(i + j)
        for j in range(54):
            setattr(s, "g%d" % j, i * 0.5 + j)
        s.flush()
        keep.append(s)
    return keep


def time_runs(cmd, runs):
    # Timed runs write to /dev/null, so the figure is the reader's own cost, not the cost of
    # this harness draining a pipe; one untimed run checks that the output is complete.
    lines = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           check=False).stdout.count(b"\n")
    times = []
    with open(os.devnull, "wb") as null:
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=null, stderr=subprocess.DEVNULL, check=False)
            times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    agent = os.path.join(os.path.abspath(args.build), "statherd-agent")
    tmp = tempfile.mkdtemp(prefix="statherd-bench-")
    try:
        make_files(tmp, args.files)
        glob = os.path.join(tmp, "*.mmstats")
        rows = [
            ("statherd-agent --once", [agent, "--once", "--mmstats-glob", glob]),
            ("Python reference reader", ["/usr/bin/python3",
                                         os.path.join(HERE, "mmstats_reference_reader.py"), glob]),
        ]
        results = [(name,) + time_runs(cmd, args.runs) for name, cmd in rows]
        print("agent read cost: %d mmstats v1 files x 100 fields, whole process, %d runs each"
              % (args.files, args.runs))
        print("| %-26s | %9s | %9s | %14s | %12s | %9s |" %
              ("reader", "min ms", "median ms", "fields/s", "us per file", "lines"))
        print("|%s|%s|%s|%s|%s|%s|" % ("-" * 28, "-" * 11, "-" * 11, "-" * 16, "-" * 14, "-" * 11))
        for name, tmin, tmed, lines in results:
            print("| %-26s | %9.1f | %9.1f | %14.0f | %12.1f | %9d |" %
                  (name, tmin * 1e3, tmed * 1e3, args.files * 100 / tmin,
                   tmin * 1e6 / args.files, lines))
        print("speed-up (min/min): %.1fx; issue's figure for the original mmstats reader: ~371 ms"
              % (results[1][1] / results[0][1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
