#!/usr/bin/python3
"""make demo: the two older kinds of process statherd reads besides its own v2 writer.

  mmstats DIR     a "cron" process using the original 2012 mmstats format (an mmstats v1 file
                  in DIR written by clients/python/mmstats_writer.py): `jobs.count` (a counter by
                  the agent's default patterns) and `jobs.running` (a gauge), a few jobs a second.
  scales          a "billing" process serving a Scales-style /status/ tree on 127.0.0.1 (a free
                  port): a meter `charges` and a PMF `charge_latency` (the process's own
                  quantiles, as greplin.scales computes them) and a gauge `pending`.

Each prints "ready" (scales: "ready PORT") once it can be read, and runs until SIGTERM."""
import json
import math
import os
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients",
                                "python"))
import mmstats_writer as mm  # noqa: E402


def run_mmstats(directory):
    class CronStats(mm.MmStats):
        jobs = mm.CounterField(label="jobs.count")
        running = mm.UIntField(label="jobs.running")

    stats = CronStats(path=directory, cmd="cron")
    print("ready", flush=True)
    rng = random.Random()
    start = time.monotonic()
    while True:
        t = time.monotonic() - start
        time.sleep(rng.expovariate(3 + 2 * math.sin(t / 5)))
        stats.jobs.incr()
        stats.running = rng.randint(1, 4)


class Billing:
    """A greplin.scales-like stat tree: a meter with EWMA rates and a PMF over a reservoir."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.m1 = 0.0
        self.sample = []  # the last 500 latencies (Scales keeps a reservoir)

    def charge(self, seconds):
        with self.lock:
            self.count += 1
            self.sample = (self.sample + [seconds])[-500:]

    def tree(self):
        with self.lock:
            values = sorted(self.sample) or [0.0]
            count = self.count

        def q(p):
            return values[min(len(values) - 1, int(p * len(values)))]
        mean = sum(values) / len(values)
        return {
            "charges": {"count": count, "m1": 5.0, "m5": 5.0, "m15": 5.0, "unit": "second"},
            "charge_latency": {"count": count, "min": values[0], "max": values[-1],
                               "mean": mean, "stddev": 0.0, "median": q(0.5),
                               "75percentile": q(0.75), "95percentile": q(0.95),
                               "98percentile": q(0.98), "99percentile": q(0.99),
                               "999percentile": q(0.999)},
            "pending": len(values) % 7}


def run_scales():
    billing = Billing()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(billing.tree()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready %d" % server.server_address[1], flush=True)
    rng = random.Random()
    start = time.monotonic()
    while True:
        t = time.monotonic() - start
        time.sleep(rng.expovariate(5 + 3 * math.sin(t / 4)))
        billing.charge(rng.lognormvariate(math.log(0.080), 0.5))


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if sys.argv[1:2] == ["mmstats"] and len(sys.argv) == 3:
            run_mmstats(sys.argv[2])
        elif sys.argv[1:] == ["scales"]:
            run_scales()
        else:
            sys.exit("usage: demo_legacy_writers.py mmstats DIR | scales")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
