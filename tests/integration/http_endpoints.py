"""Test endpoints for the agent's HTTP sources (run as a child process by test_http_sources.py).

  http_endpoints.py scales       serves, on a free loopback port, a Scales-shaped stat tree and
                                 three bad endpoints; prints "ready PORT" once listening
  http_endpoints.py prometheus PORT
                                 a real prometheus_client endpoint (start_http_server) with a
                                 counter, gauge, histogram and summary; prints "ready PORT"

The Scales tree has the shapes greplin.scales writes (__init__.py, meter.py): nested
StatContainers, IntStat/DoubleStat/Stat leaves, a ticked and an unticked MeterStatDict
({"unit": "per second", "count", "m1", "m5", "m15"}), a refreshed PmfStatDict (count, min, max,
mean, stddev, median, 75percentile ... 999percentile) and an IntDict keyed by status code.
Python's json writes NaN for a float('nan') leaf, as Scales' jsonFormat would.
"""

import http.server
import json
import sys
import threading

SCALES_TREE = {
    "handlers": {
        "search": {
            "requests": {"unit": "per second", "count": 1234,
                         "m1": 2.5, "m5": 1.25, "m15": 0.5},
            "latency": {"count": 1234, "min": 0.002, "max": 1.9, "mean": 0.05,
                        "stddev": 0.01, "median": 0.04, "75percentile": 0.06,
                        "95percentile": 0.12, "98percentile": 0.2, "99percentile": 0.3,
                        "999percentile": 1.5},
            "statusCodes": {"200": 1200, "500": 34},
        },
        "idle": {"hits": {"unit": "per second", "count": 0}},
    },
    "queue": {"depth": 7, "oldest_seconds": 1.5, "stalled": False},
    "errors": 34,
    "build": {"version": "4.2.0"},
    "ratio": float("nan"),
}

# ~2.7 MB of valid JSON, built before "ready" so that serving it is instant.
HUGE_BODY = json.dumps({f"k{i}": i for i in range(200000)}).encode()

# Released when the server shuts down, so the slow handler ends with the process.
SHUTDOWN = threading.Event()


class ScalesHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test reads stdout for "ready"
        pass

    def reply(self, body, content_type="text/html; charset=utf-8"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)  # Flask's Scales handler says text/html
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/status/" and query == "format=json":
            return self.reply(json.dumps(SCALES_TREE).encode())
        if path == "/slow/":
            SHUTDOWN.wait(60)  # never answers within the agent's deadline
            return None
        if path == "/huge/":
            return self.reply(HUGE_BODY)
        if path == "/notjson/":
            return self.reply(b"<html><body>Stats</body></html>")
        self.send_error(404)
        return None


def serve_scales():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScalesHandler)
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        SHUTDOWN.set()


def serve_prometheus(port):
    import prometheus_client as pc

    requests = pc.Counter("requests", "Requests served", ["method"])
    requests.labels("GET").inc(3)
    requests.labels('PO"ST').inc(2)
    pc.Gauge("queue_depth", "Queue depth").set(7.5)
    latency = pc.Histogram("latency_seconds", "Latency", buckets=(0.1, 0.5, 1.0))
    for v in (0.05, 0.2, 0.3, 0.7, 2.0):
        latency.observe(v)
    payload = pc.Summary("payload_bytes", "Payload")
    payload.observe(100)
    payload.observe(300)
    pc.start_http_server(port, addr="127.0.0.1")
    print(f"ready {port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    if sys.argv[1] == "scales":
        serve_scales()
    else:
        serve_prometheus(int(sys.argv[2]))
