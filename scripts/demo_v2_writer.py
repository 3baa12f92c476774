#!/usr/bin/python3
"""make demo: one worker of the simulated "shop" service, writing through the statherd v2 client
(clients/python/statherd): `requests` and `errors` counters, a `queue_depth` gauge and a
`request_latency` histogram (seconds). Its load rises and falls (a sine with a 24 s period and
some noise), `--slow` multiplies its latencies, and `--incident A:B` raises its error rate and
queue between A and B seconds after the start, so the demo's table visibly moves.

Prints "ready" once its stat file exists; on SIGTERM prints {"requests": N, "errors": N} (what
it counted, for the demo's summary) and exits."""
import argparse
import json
import math
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients",
                                "python"))
import statherd  # noqa: E402


class Stop(Exception):
    pass


def on_term(signum, frame):
    raise Stop()


def latency(rng, slow):
    """A request's seconds: lognormal around 18 ms, 1.5 % of them in a 120-300 ms tail."""
    if rng.random() < 0.015 * slow:
        return rng.uniform(0.120, 0.300)
    return rng.lognormvariate(math.log(0.018 * slow), 0.35)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=30, help="mean requests per second")
    ap.add_argument("--phase", type=float, default=0, help="where in the load cycle it starts")
    ap.add_argument("--slow", type=float, default=1, help="latency multiplier")
    ap.add_argument("--incident", default="", help="A:B seconds with 15%% errors and a backlog")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    incident = tuple(float(x) for x in args.incident.split(":")) if args.incident else (-1, -1)
    rng = random.Random(args.seed)
    requests = statherd.Counter("requests", "requests served")
    errors = statherd.Counter("errors", "requests that failed")
    queue = statherd.Gauge("queue_depth", "requests waiting")
    seconds = statherd.Histogram("request_latency", "seconds per request")
    served = failed = 0
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    start = time.monotonic()
    try:
        while True:
            t = time.monotonic() - start
            in_incident = incident[0] <= t < incident[1]
            load = 1 + 0.45 * math.sin(2 * math.pi * t / 24 + args.phase)
            rate = max(1.0, args.rate * load * rng.uniform(0.9, 1.1))
            time.sleep(rng.expovariate(rate))
            requests.inc()
            served += 1
            if rng.random() < (0.15 if in_incident else 0.01):
                errors.inc()
                failed += 1
            seconds.observe(latency(rng, args.slow * (2.5 if in_incident else 1)))
            backlog = 12 if in_incident else 0
            queue.set(max(0, round(rate / 8 + backlog + rng.gauss(0, 1))))
    except (Stop, KeyboardInterrupt):
        pass
    print(json.dumps({"requests": served, "errors": failed}), flush=True)


if __name__ == "__main__":
    main()
