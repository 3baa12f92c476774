#!/usr/bin/python3
"""prometheus_client multiprocess collection: statherd-agent against prometheus_client's own
MultiProcessCollector on the same directory, in one run. Prints a table.

The directory holds N processes' files (default 1,000), 3 files each (counter_<pid>.db with 10
labelled counters, gauge_livesum_<pid>.db with 10 gauges, histogram_<pid>.db with one
histogram: 9 buckets + _sum), i.e. 30 series per process, written once with prometheus_client's
MmapedDict in this process (fast; the bytes are the library's own).
 (a) steady state, CPU time per collection (both sides; wall time on a shared machine
     mostly measures the neighbours): the agent keeps files mapped and re-reads values
     (bench/prom_multiproc_bench.cpp, Google Benchmark, PromMultiprocSource::scrape) vs
     MultiProcessCollector.collect() (timeit, materialising the samples);
 (b) cold, whole process: `statherd-agent --once --prom-multiproc-dir DIR > /dev/null` vs a
     Python process that imports prometheus_client, collects once and runs generate_latest.

Usage: prom_multiproc_bench.py BUILD_DIR [--processes 1000] [--runs 7]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

from prometheus_client import multiprocess
from prometheus_client.mmap_dict import MmapedDict, mmap_key

BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, float("inf")]

PY_COLD = """
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
import sys
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry, path=sys.argv[1])
sys.stdout.buffer.write(generate_latest(registry))
"""


def make_files(directory, processes):
    for p in range(processes):
        pid = 50000 + p
        d = MmapedDict(os.path.join(directory, "counter_%d.db" % pid))
        for i in range(10):
            d.write_value(mmap_key("requests", "requests_total", ["route"], ["/r%d" % i],
                                   "Requests"), float(p + i))
        d.close()
        d = MmapedDict(os.path.join(directory, "gauge_livesum_%d.db" % pid))
        for i in range(10):
            d.write_value(mmap_key("inflight_%d" % i, "inflight_%d" % i, [], [], "In flight"),
                          float(i))
        d.close()
        d = MmapedDict(os.path.join(directory, "histogram_%d.db" % pid))
        for b in BUCKETS:
            le = "+Inf" if b == float("inf") else repr(b)
            d.write_value(mmap_key("latency_seconds", "latency_seconds_bucket", ["le"], [le],
                                   "Latency"), float(p % 7))
        d.write_value(mmap_key("latency_seconds", "latency_seconds_sum", [], [], "Latency"),
                      p * 0.25)
        d.close()


def agent_steady_us(build, directory):
    exe = os.path.join(build, "bench", "prom_multiproc_bench")
    env = dict(os.environ, PROM_MULTIPROC_BENCH_DIR=directory)
    out = subprocess.run([exe, "--benchmark_format=json", "--benchmark_min_time=1"],
                         env=env, capture_output=True, text=True, check=True).stdout
    bench = json.loads(out)["benchmarks"][0]
    assert bench["time_unit"] == "us", bench
    # CPU time: the build machines are shared, so wall time mostly measures the neighbours.
    return bench["cpu_time"], int(bench["samples"])


def python_steady_us(directory, runs):
    collector = multiprocess.MultiProcessCollector(None, path=directory)

    def once():
        return sum(len(m.samples) for m in collector.collect())

    samples = once()
    per_run = timeit.repeat(once, number=1, repeat=runs, timer=time.process_time)
    return statistics.median(per_run) * 1e6, samples


def median_wall_ms(argv, runs, env=None):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, env=env, check=True)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--processes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="statherd-prom-bench-")
    try:
        directory = os.path.join(tmp, "app")
        empty = os.path.join(tmp, "empty")
        os.mkdir(directory)
        os.mkdir(empty)
        t0 = time.perf_counter()
        make_files(directory, args.processes)
        gen_s = time.perf_counter() - t0
        agent_us, agent_samples = agent_steady_us(args.build, directory)
        py_us, py_samples = python_steady_us(directory, args.runs)
        agent_env = dict(os.environ, TMPDIR=empty, STATHERD_DIR=empty)
        agent_cold = median_wall_ms([os.path.join(args.build, "statherd-agent"), "--once",
                                     "--prom-multiproc-dir", directory], args.runs, agent_env)
        py_cold = median_wall_ms(["/usr/bin/python3", "-c", PY_COLD, directory], args.runs)
        files = len(os.listdir(directory))
        print("%d processes, %d files, %d entries (generated in %.1f s); agent emits %d samples "
              "(histograms as one distribution), collector %d"
              % (args.processes, files, args.processes * 30, gen_s, agent_samples, py_samples))
        print("%-34s %14s %18s %9s %7s" % ("", "statherd-agent", "prometheus_client", "speedup",
                                           "target"))
        print("%-34s %11.0f us %15.0f us %8.1fx %6s" % ("(a) steady, CPU per collection",
                                                        agent_us, py_us, py_us / agent_us, ">=20x"))
        print("%-34s %11.1f ms %15.1f ms %8.1fx %6s" % ("(b) cold, whole process", agent_cold,
                                                        py_cold, py_cold / agent_cold, ">=3x"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
