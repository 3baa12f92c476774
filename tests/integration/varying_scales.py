#!/usr/bin/python3
"""A Scales-style /status endpoint whose values change every second, for the render tests.

GET /<name>[/...]?format=json answers the stat tree of the fake process <name> at this second:
  requests: a Scales meter (count grows by 1..5 a second, varying with time and name; m1/m5/m15)
  queue.depth: a gauge cycling through 0..16
  latency.ms: a gauge, absent in one second of nine (a null in Graphite)
  errors: a counter that resets to 0 once a minute (a process restart, as Graphite sees one)
GET /prom-<name> answers Prometheus text with labels (Graphite tags when statherd's
graphite.tags is on), changing every second:
  jobs_total{queue, state, dc, dc2}: counters growing by 1..6 a second, unevenly
  room_temperature{room, name}: a gauge (a label "name" is Graphite's own tag: renamed)
Prints "ready PORT" once listening on 127.0.0.1.
"""
import http.server
import json
import threading
import time
import zlib

LOCK = threading.Lock()
STATE = {}  # name -> {"t": last second counted, "count": meter count}


def tree(name, now):
    h = zlib.crc32(name.encode()) % 7
    with LOCK:
        st = STATE.setdefault(name, {"t": now, "count": 0})
        while st["t"] < now:
            st["t"] += 1
            st["count"] += 1 + (st["t"] * 7 + h) % 5
        count = st["count"]
    out = {
        "requests": {"count": count, "m1": round(count / 60.0, 3), "m5": 1.5, "m15": 0.5,
                     "unit": "requests"},
        "queue": {"depth": (now * 13 + h * 5) % 17},
        "errors": (now % 60) * (1 + h % 3),
    }
    if now % 9 != h:
        out["latency"] = {"ms": 10 + ((now * 29 + h * 3) % 23) / 4}
    return out


def prom_text(name, now):
    h = zlib.crc32(name.encode()) % 7
    lines = ["# TYPE jobs_total counter"]
    for i, (queue, state, dc) in enumerate([("mail", "ok", "east"), ("mail", "failed", "east"),
                                           ("sms", "ok", "west"), ("sms", "failed", "west")]):
        count = now * (i + 1) + (now // 3) * (i % 2) + (now + h) // 5 - 1_700_000_000
        lines.append(f'jobs_total{{queue="{queue}",state="{state}",dc="{dc}",'
                     f'dc2="{dc}-2"}} {count}')
    lines.append("# TYPE room_temperature gauge")
    for i, room in enumerate(("lab", "hall")):
        lines.append(f'room_temperature{{room="{room}",name="{room}-sensor"}} '
                     f'{18 + ((now * (5 + i) + h) % 11) / 2}')
    return "\n".join(lines) + "\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        name = self.path.split("?")[0].strip("/").split("/")[0] or "default"
        if name.startswith("prom-"):
            body = prom_text(name, int(time.time())).encode()
            content_type = "text/plain; version=0.0.4"
        else:
            body = json.dumps(tree(name, int(time.time()))).encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()
