"""A misbehaving HTTP proxy for the chaos test (stdlib, one thread per connection).

It sits between statherd-agent and statherd-server. The agent sends one POST per connection
(agent/shipper.h), so the proxy decides one fault per request, from a seeded random.Random:

  pass            forward the request, return the server's answer
  http_5xx        answer 500/502/503/504 itself; the server never sees the request
  reset_request   read the headers and part of the body, then reset the connection (RST)
  reset_response  forward the whole request (the server applies and acknowledges it), send the
                  agent only a prefix of the answer, then reset: the agent must resend, and the
                  server must deduplicate
  delay_request   wait (0.1-1.5 s, or 5.5-8 s: past the agent's 5 s ship timeout), then forward
  delay_response  forward, wait as above, then answer (a long delay: the server has the batch,
                  the agent gave up on it: a resend the server must deduplicate)

When the server is down the connection to it fails: counted as `upstream_down`, the agent's
connection is reset. `faulty = False` makes every request `pass` (the drain phase).
"""

import collections
import random
import socket
import struct
import threading
import time

import harness

FAULT_WEIGHTS = (("pass", 50), ("http_5xx", 16), ("reset_request", 9), ("reset_response", 9),
                 ("delay_request", 8), ("delay_response", 8))
STATUS_TEXT = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
               504: "Gateway Timeout"}
MAX_HEADER_BYTES = 64 * 1024


class ConnectionGone(Exception):
    pass


def reset(sock):
    """Close with an RST (SO_LINGER 0) instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def read_until_headers_end(sock):
    """(header bytes including the blank line, bytes read past it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionGone("peer closed before the end of the headers")
        data += chunk
        if len(data) > MAX_HEADER_BYTES:
            raise ConnectionGone("headers too long")
    end = data.index(b"\r\n\r\n") + 4
    return data[:end], data[end:]


def header_value(headers, wanted):
    for line in headers.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == wanted:
            return value.strip().decode(errors="replace")
    return None


def content_length(headers):
    for line in headers.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def read_exactly(sock, have, length):
    while len(have) < length:
        chunk = sock.recv(min(65536, length - len(have)))
        if not chunk:
            raise ConnectionGone(f"peer closed after {len(have)} of {length} body bytes")
        have += chunk
    return have[:length]


class FaultyProxy:
    """Listens on 127.0.0.1:port, forwards to 127.0.0.1:upstream_port, misbehaves at random."""

    def __init__(self, upstream_port, seed, long_delay=(5.5, 8.0)):
        self.upstream_port = upstream_port
        self.rng = random.Random(seed)
        self.long_delay = long_delay
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.requests = []   # (unix time, X-Statherd-Seq, fault, server status or None), for the report
        self.faulty = False
        self.stopping = False
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept_loop, name="chaos-proxy", daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.thread.start()
        harness.wait_for_port("127.0.0.1", self.port, 10)
        return self

    def stop(self):
        self.stopping = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.thread.join(timeout=10)

    def count(self, what):
        with self.lock:
            self.counts[what] += 1

    def _choose(self):
        """(fault, delay seconds, 5xx status, fraction) drawn under the lock, so the sequence of
        decisions depends on the seed and the order of requests only."""
        with self.lock:
            if not self.faulty:
                return "pass", 0.0, 0, 0.0
            names = [n for n, _ in FAULT_WEIGHTS]
            fault = self.rng.choices(names, [w for _, w in FAULT_WEIGHTS])[0]
            if self.rng.random() < 0.3:
                delay = self.rng.uniform(*self.long_delay)
            else:
                delay = self.rng.uniform(0.1, 1.5)
            return fault, delay, self.rng.choice(sorted(STATUS_TEXT)), self.rng.random()

    def _accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(30)
        try:
            self._handle(conn)
        except (ConnectionGone, OSError) as exc:
            self.count("client_error")
            self.last_client_error = repr(exc)
            reset(conn)

    def log(self, seq, fault, status):
        with self.lock:
            self.requests.append((time.time(), seq, fault, status))

    def _handle(self, conn):
        headers, rest = read_until_headers_end(conn)
        length = content_length(headers)
        seq = header_value(headers, b"x-statherd-seq")
        fault, delay, status, fraction = self._choose()
        self.count(fault)
        self.log(seq, fault, status if fault == "http_5xx" else None)
        if fault == "reset_request":
            read_exactly(conn, rest, int(length * fraction))  # part of the body, then RST
            reset(conn)
            return
        body = read_exactly(conn, rest, length)
        if fault == "http_5xx":
            text = f"proxy fault: {status}\n".encode()
            conn.sendall(f"HTTP/1.1 {status} {STATUS_TEXT[status]}\r\nContent-Type: text/plain\r\n"
                         f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n".encode() + text)
            conn.close()
            return
        if fault == "delay_request":
            time.sleep(delay)
        answer = self._forward(headers + body)
        self.log(seq, "server answered" if answer else "server unreachable",
                 answer.split(b" ", 2)[1].decode(errors="replace") if answer else None)
        if answer is None:
            self.count("upstream_down")
            reset(conn)
            return
        if fault == "reset_response":
            conn.sendall(answer[: int(len(answer) * fraction)])
            reset(conn)
            return
        if fault == "delay_response":
            time.sleep(delay)
        conn.sendall(answer)
        conn.close()

    def _forward(self, request):
        """The server's whole answer (headers + body), or None when it is unreachable or hangs
        up before answering."""
        try:
            with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as up:
                up.sendall(request)
                headers, rest = read_until_headers_end(up)
                return headers + read_exactly(up, rest, content_length(headers))
        except (ConnectionGone, OSError):
            return None
