#!/usr/bin/python3
"""/render function queries: statherd-server against graphite-web 1.1.8, in one run.

Sets up what tests/integration/test_graphite_web.py sets up (carbon-cache, statherd-server
with its Graphite sink, two agents on changing Scales endpoints, ~45 s of 1 s points, then
graphite-web over the Whisper files statherd wrote) and sends every request of that test's
TARGETS to both servers, as Grafana does (form POST, the window of the test), --reps times
each, after one warm-up. Prints the median wall time per request on each side by function
group and the ratio, then the total. Both answer the same points (the test checks that).

graphite-web runs under Django's development server (one thread), as in the test: a
production graphite-web would sit behind gunicorn/uwsgi, which adds workers but does not
make one request faster.

Usage: render_bench.py BUILD_DIR [--reps 5]
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    os.environ["STATHERD_BIN_DIR"] = os.path.abspath(args.build)
    import test_graphite_web as t  # noqa: E402 - after STATHERD_BIN_DIR

    cls = t.GraphiteWebParityTest
    print("render_bench: starting carbon-cache, statherd-server, agents (~60 s of data), "
          "graphite-web", file=sys.stderr)
    cls.setUpClass()
    try:
        rows = []
        for target in t.TARGETS + t.TAG_TARGETS:
            params = {"target": target, "from": str(cls.start_ts), "until": str(cls.until),
                      "format": "json"}
            times = {}
            for name, url in (("statherd", cls.server.url), ("graphite-web", cls.graphite_web.url)):
                t.post(url + "/render", params)  # warm-up
                samples = []
                for _ in range(args.reps):
                    start = time.perf_counter()
                    status, _ = t.post(url + "/render", params)
                    samples.append(time.perf_counter() - start)
                    if status != 200:
                        raise SystemExit(f"{name} answered {status} to {target}")
                times[name] = statistics.median(samples)
            group = ("(tags)" if target in t.TAG_TARGETS else "(pipe)" if "|" in target
                     else target.split("(")[0] if "(" in target else "(path)")
            rows.append((group, times))
        # the tag API (Grafana's tag editor), GET as Grafana sends it
        for path in ("/tags", "/tags/dc", "/tags/findSeries?expr=dc%3Deast",
                     "/tags/autoComplete/tags?expr=name%3Dstatherd.jobs.jobs_total.rate",
                     "/tags/autoComplete/values?tag=name&valuePrefix=statherd.jobs"):
            times = {}
            for name, url in (("statherd", cls.server.url), ("graphite-web", cls.graphite_web.url)):
                t.harness.http_request(url + path, timeout=60)  # warm-up
                samples = []
                for _ in range(args.reps):
                    start = time.perf_counter()
                    status, _ = t.harness.http_request(url + path, timeout=60)
                    samples.append(time.perf_counter() - start)
                    if status != 200:
                        raise SystemExit(f"{name} answered {status} to {path}")
                times[name] = statistics.median(samples)
            rows.append(("(tag API)", times))
        stored = len(t.harness.http_get_json(cls.server.url + "/tags/findSeries?expr=name%3D~s"))
        plain = len(t.harness.http_get_json(cls.server.url + "/metrics/index.json"))
    finally:
        cls.tearDownClass()
    groups = {}
    for group, times in rows:
        g = groups.setdefault(group, [0.0, 0.0, 0])
        g[0] += times["statherd"]
        g[1] += times["graphite-web"]
        g[2] += 1
    print(f"\n/render and /tags, {len(rows)} requests (4 series of 36-46 points at 1 s each, "
          f"2 agents; {stored} stored series, {stored - plain} of them tagged), "
          f"median of {args.reps} per request, wall time per request\n")
    print(f"| function | requests | statherd ms | graphite-web ms | graphite-web / statherd |")
    print("|---|---|---|---|---|")
    for name, (ours, theirs, n) in sorted(groups.items()):
        print(f"| {name} | {n} | {ours / n * 1000:.2f} | {theirs / n * 1000:.2f} | "
              f"{theirs / ours:.1f}x |")
    ours = sum(g[0] for g in groups.values())
    theirs = sum(g[1] for g in groups.values())
    print(f"| **all** | {len(rows)} | {ours / len(rows) * 1000:.2f} | "
          f"{theirs / len(rows) * 1000:.2f} | **{theirs / ours:.1f}x** |")
    slowest = min(groups.items(), key=lambda kv: kv[1][1] / kv[1][0])
    print(f"\nsmallest ratio: {slowest[0]} {slowest[1][1] / slowest[1][0]:.1f}x")


if __name__ == "__main__":
    main()
