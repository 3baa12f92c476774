#!/usr/bin/python3
"""statherd-server outputs against Python references, in one run. Prints one table per output.

bench/outputs_bench (C++) builds one rolled-up interval of N series (1,000 / 10,000 / 100,000;
apps x hosts x 18 metrics at host and app level, counters with count/rate/m1/m5/m15, gauges
with min/max/mean/sum/p50/p90/p99, as server/engine_emit.cpp emits them), times each output and
dumps the series; this script then runs the references on exactly those series:
 1. GET /metrics: PrometheusSink::emit(next interval) + scrape() against prometheus_client's
    generate_latest() on a registry holding the same families (Counter for `_count_total`,
    Gauge otherwise; labels app/host/level, host="" at the app level since a prometheus_client
    family has fixed label names; _created series off so both expose N series).
 2. remote_write: collect + rw_series_from_families + encode_write_request + snappy, per
    sample. No reference: python3-protobuf (and python snappy) are not installed here.
 3. Graphite: GraphiteSink::emit per line against a Python loop building the same paths and
    formatting "path value ts\\n" lines (what Scales- and statsd-style Python pushers do).
 4. /render: MemoryStore::render + JSON for a host wildcard matching 100 / 1,000 paths over
    1 h of 10 s points. No reference: graphite-web is not installed.
Times: CPU time of the measuring thread (the machine is shared), median of --reps runs.

Usage: outputs_bench.py BUILD_DIR [--series 1000,10000,100000] [--reps 5]
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

# Before the import: prometheus_client reads it once. With _created series every counter would
# expose two series and the two sides would not serve the same number.
os.environ["PROMETHEUS_DISABLE_CREATED_SERIES"] = "True"
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

LABELS = ("app", "host", "level")   # sorted, as statherd's exposition orders them
PREFIX = "statherd"


def cpu_median(fn, reps):
    """Median thread CPU seconds of fn() over reps runs, and fn's last result."""
    times, result = [], None
    for _ in range(reps):
        t0 = time.thread_time()
        result = fn()
        times.append(time.thread_time() - t0)
    return statistics.median(times), result


def run_cpp(build, series, reps, dump):
    exe = os.path.join(build, "bench", "outputs_bench")
    out = subprocess.run([exe, "--series", ",".join(map(str, series)), "--reps", str(reps),
                          "--dump", dump], capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def prometheus_reference(metrics_text, reps):
    """A registry with statherd's families and values; generate_latest() time and bytes, and
    the time to set every value once (prometheus_client's side of statherd's emit())."""
    registry = CollectorRegistry(auto_describe=False)
    updates = []
    for fam in text_string_to_metric_families(metrics_text):
        cls = Counter if fam.type == "counter" else Gauge
        metric = cls(fam.name, fam.documentation, LABELS, registry=registry)
        for s in fam.samples:
            if fam.type == "counter" and not s.name.endswith("_total"):
                continue
            child = metric.labels(*(s.labels.get(k, "") for k in LABELS))
            updates.append((child.inc if fam.type == "counter" else child.set, s.value))

    def update():
        for fn, value in updates:
            fn(value)

    update_s, _ = cpu_median(update, reps)
    scrape_s, body = cpu_median(lambda: generate_latest(registry), reps)
    return scrape_s, update_s, body


def series_lines(text):
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def read_points(path):
    points = []
    with open(path) as f:
        for line in f:
            level, app, host, metric, stat, value = line.rstrip("\n").split("\t")
            points.append((level, app, host, metric, stat, float(value)))
    return points


def format_graphite(points, ts):
    lines = []
    append = lines.append
    for level, app, host, metric, stat, value in points:
        if level == "host":
            path = "%s.%s.hosts.%s.%s.%s" % (PREFIX, app, host, metric, stat)
        else:
            path = "%s.%s.%s.%s" % (PREFIX, app, metric, stat)
        append("%s %s %d\n" % (path, value, ts))
    return "".join(lines)


def paths_of(text):
    return sorted(line.split(" ", 1)[0] for line in text.splitlines())


def fmt_time(seconds):
    if seconds >= 1:
        return "%.2f s" % seconds
    if seconds >= 1e-3:
        return "%.1f ms" % (seconds * 1e3)
    if seconds >= 1e-6:
        return "%.1f us" % (seconds * 1e6)
    return "%.0f ns" % (seconds * 1e9)


def table(title, rows, footnotes=()):
    print(title)
    head = ("series", "statherd", "reference", "ratio", "bytes")
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(5)]
    line = lambda r: "| " + " | ".join(str(c).rjust(w) for c, w in zip(r, widths)) + " |"  # noqa
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    for note in footnotes:
        print("  " + note)
    print()


def ratio(ref, ours):
    return "%.1fx" % (ref / ours) if ours > 0 else "-"


def prometheus_section(rows, dump, reps):
    out, notes = [], []
    for r in rows:
        n = r["series"]
        with open(os.path.join(dump, "metrics_%d.txt" % n)) as f:
            text = f.read()
        ref_s, update_s, body = prometheus_reference(text, reps)
        if series_lines(body.decode()) != series_lines(text):
            sys.exit("reference exposes %d series, statherd %d" % (series_lines(body.decode()),
                                                                   series_lines(text)))
        out.append(("{:,}".format(n), fmt_time(r["time_s"]), fmt_time(ref_s),
                    ratio(ref_s, r["time_s"]), "%s / %s" % ("{:,}".format(r["bytes"]),
                                                            "{:,}".format(len(body)))))
        notes.append("%s: statherd emit %s + scrape %s (first emit, creating the series, %s); "
                     "prometheus_client setting every value once %s"
                     % ("{:,}".format(n), fmt_time(r["emit_s"]), fmt_time(r["scrape_s"]),
                        fmt_time(r["first_emit_s"]), fmt_time(update_s)))
    table("1. GET /metrics per scrape: statherd emit+scrape vs prometheus_client generate_latest "
          "(bytes: statherd / reference)", out, notes)


def remote_write_section(rows):
    out, notes = [], []
    for r in rows:
        n = r["samples"]
        out.append(("{:,}".format(r["series"]), fmt_time(r["time_s"] / n) + "/sample", "-", "-",
                    "%.1f B/sample" % (r["bytes"] / n)))
        notes.append("%s: whole interval %s (collect+convert %s, encode+snappy %s in %d-sample "
                     "batches); uncompressed %.1f B/sample"
                     % ("{:,}".format(r["series"]), fmt_time(r["time_s"]),
                        fmt_time(r["convert_s"]), fmt_time(r["encode_compress_s"]), 2000,
                        r["raw_bytes"] / n))
    notes.append("no reference: python3-protobuf is not installed (and no protoc to build "
                 "the .proto), so there is no Python encoding to compare with")
    table("2. remote_write: one interval to snappy WriteRequests", out, notes)


def graphite_section(rows, dump, reps):
    out, notes = [], []
    for r in rows:
        n = r["series"]
        points = read_points(os.path.join(dump, "points_%d.tsv" % n))
        ref_s, text = cpu_median(lambda: format_graphite(points, r["start_s"]), reps)
        with open(os.path.join(dump, "graphite_%d.txt" % n)) as f:
            ours = f.read()
        if paths_of(text) != paths_of(ours):
            sys.exit("the Python reference formats other paths than statherd's Graphite sink")
        lines = r["lines"]
        out.append(("{:,}".format(n), fmt_time(r["time_s"] / lines) + "/line",
                    fmt_time(ref_s / lines) + "/line", ratio(ref_s, r["time_s"]),
                    "%.1f / %.1f B/line" % (r["bytes"] / lines, len(text) / lines)))
        notes.append("%s: graphite_path() alone %s/line" % ("{:,}".format(n),
                                                             fmt_time(r["path_s"] / lines)))
    notes.append("same paths on both sides (checked); values: statherd shortest form ('153'), "
                 "Python repr ('153.0')")
    table("3. Graphite: GraphiteSink::emit vs a Python formatting loop (bytes: statherd / "
          "reference)", out, notes)


def render_section(rows):
    out = [("%s paths" % "{:,}".format(r["paths"]), fmt_time(r["time_s"]), "-", "-",
            "{:,}".format(r["bytes"])) for r in rows]
    r0 = rows[0]
    notes = ["store: %s paths x %d points (1 h of 10 s), filled in %s; render() alone %s"
             % ("{:,}".format(r0["store_paths"]), r0["points_per_path"], fmt_time(r0["fill_s"]),
                " / ".join(fmt_time(r["render_s"]) for r in rows)),
             "targets: " + ", ".join(r["target"] for r in rows),
             "no reference: graphite-web is not installed"]
    table("4. /render: MemoryStore::render + JSON dump", out, notes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--series", default="1000,10000,100000")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    series = [int(s) for s in args.series.split(",")]
    dump = tempfile.mkdtemp(prefix="statherd-outputs-bench-")
    try:
        rows = run_cpp(args.build, series, args.reps, dump)
        by = lambda section: [r for r in rows if r["section"] == section]  # noqa: E731
        print("thread CPU time, median of %d runs; ratio = reference / statherd (above 1: "
              "statherd faster); load average %.2f %.2f %.2f" % ((args.reps,) + os.getloadavg()))
        print()
        prometheus_section(by("prometheus"), dump, args.reps)
        remote_write_section(by("remote_write"))
        graphite_section(by("graphite"), dump, args.reps)
        render_section(by("render"))
    finally:
        shutil.rmtree(dump, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
