#!/usr/bin/python3
"""make demo: one Python process using the statherd v2 client (clients/python/statherd): counts
`requests` at --rate per second and times each in `latency`, drawn uniformly from 10 to 50 ms,
so the merged percentiles are known: p50 about 30 ms, p99 about 49.6 ms."""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients",
                                "python"))
import statherd  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=10)
    ap.add_argument("--duration", type=float, default=60)
    args = ap.parse_args()
    requests = statherd.Counter("requests", "requests served")
    latency = statherd.Histogram("latency", "seconds per request")
    end = time.monotonic() + args.duration
    next_at = time.monotonic()
    while time.monotonic() < end:
        requests.inc()
        latency.observe(random.uniform(0.010, 0.050))
        next_at += 1.0 / args.rate
        time.sleep(max(0.0, next_at - time.monotonic()))


if __name__ == "__main__":
    main()
