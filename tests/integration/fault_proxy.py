"""A small HTTP proxy between statherd-agent and statherd-server that misbehaves on cue.

It runs in a thread of the test process (stdlib only). Every request is forwarded to the
upstream server unless a fault is armed: `arm([...])` queues faults, each consumed by one
request (or, for ("status_for", code, seconds), by every request until that many seconds have
passed since the first request it answered):

    ("status", 404)              answer 404 with a plain body, nothing forwarded
    ("status_for", 503, 14.0)    answer 503 for 14 s, nothing forwarded
    ("corrupt",)                 forward the request with its body's bytes flipped after byte 8
                                 (the server's decoder refuses it: a genuine server verdict)

`answered` counts the faults served per status, `forwarded` the requests passed through.
`delay` (seconds, default 0) holds every request that long before it is handled: a slow
upstream.
"""

import http.client
import http.server
import threading
import time


class FaultProxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self._lock = threading.Lock()
        self._faults = []
        self._status_until = None
        self.answered = {}
        self.forwarded = 0
        self.corrupted = 0
        self.delay = 0.0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet: the test prints daemon logs on failure
                pass

            def do_GET(self):
                proxy._handle(self)

            def do_POST(self):
                proxy._handle(self)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    def arm(self, faults):
        with self._lock:
            self._faults.extend(faults)

    def disarm(self):
        """Drops the faults not served yet: everything passes through from now on."""
        with self._lock:
            self._faults.clear()
            self._status_until = None

    def idle(self):
        """True once every armed fault has been served."""
        with self._lock:
            return not self._faults

    def _next_fault(self):
        with self._lock:
            while self._faults:
                fault = self._faults[0]
                if fault[0] != "status_for":
                    return self._faults.pop(0)
                now = time.monotonic()
                if self._status_until is None:
                    self._status_until = now + fault[2]
                if now < self._status_until:
                    return ("status", fault[1])
                self._faults.pop(0)
                self._status_until = None
            return None

    def _count(self, status):
        with self._lock:
            self.answered[status] = self.answered.get(status, 0) + 1

    def _handle(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if self.delay:
            time.sleep(self.delay)
        fault = self._next_fault()
        if fault is not None and fault[0] == "status":
            self._count(fault[1])
            self._reply(handler, fault[1], b"proxy says no\n", "text/plain")
            return
        if fault is not None and fault[0] == "corrupt" and len(body) > 16:
            body = body[:8] + bytes(b ^ 0xA5 for b in body[8:])
            with self._lock:
                self.corrupted += 1
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in ("host", "content-length", "connection")}
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=10)
        try:
            conn.request(handler.command, handler.path, body=body if body else None,
                         headers=headers)
            response = conn.getresponse()
            data = response.read()
            ctype = response.getheader("Content-Type", "application/octet-stream")
            status = response.status
        except OSError:
            status, data, ctype = 502, b"upstream unreachable\n", "text/plain"
        finally:
            conn.close()
        with self._lock:
            self.forwarded += 1
        self._reply(handler, status, data, ctype)

    @staticmethod
    def _reply(handler, status, data, ctype):
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data)
        handler.close_connection = True
