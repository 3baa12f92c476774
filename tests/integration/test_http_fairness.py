"""Nobody who can reach the port can lock real clients out (issue 9, items 7 and 8), against the
real statherd-server:

- idle sockets holding every slot of limits.max_connections do not lock out /healthz or ingest:
  the connection that has been idle longest is closed to admit a new one, while a connection
  in the middle of a request is never closed for that;
- clients looping on GET /metrics over many series do not delay /healthz (the scrape is served
  by the read thread, not the one that answers /healthz and ingest), and many slow readers of
  /metrics share one copy of its text instead of holding one each.
"""

import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
import unittest

import harness
from test_read_abuse import HEADERS, INGEST, HealthProbe, gauge_batch, vm_rss_kib


class ServerCase(unittest.TestCase):
    CONFIG = ""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="statherd-fair-")
        token = harness.write_token_file(self.workdir)
        config = os.path.join(self.workdir, "server.yaml")
        with open(config, "w") as f:
            f.write(self.CONFIG)
        self.server = harness.StatherdServer(self.workdir, token, graphite="",
                                             interval=self.INTERVAL,
                                             extra_args=["--config", config])
        self.server.start()
        self.sockets = []
        self.addCleanup(self.cleanup)

    def cleanup(self):
        for s in self.sockets:
            s.close()
        if self.server.process is not None and self.server.process.running():
            self.server.stop()
        if not os.environ.get("STATHERD_KEEP_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def connect(self, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(30)
        s.connect(("127.0.0.1", self.server.port))
        self.sockets.append(s)
        return s

    def post_batch(self, agent_id, seq, names, timeout=5):
        return harness.http_request(self.server.url + INGEST,
                                    data=gauge_batch(agent_id, seq, names, value=seq),
                                    headers=HEADERS, method="POST", timeout=timeout)

    def metric_value(self, name):
        _, body = harness.http_request(self.server.url + "/metrics", timeout=30)
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None


def closed_by_server(sock):
    """True once the server closed `sock` (EOF); waits up to the socket's timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class IdleSocketsTest(ServerCase):
    CAP = 16
    INTERVAL = "1s"
    # The idle timeout is long: on main the sixteen idle sockets held every slot for a minute.
    CONFIG = f"limits:\n  max_connections: {CAP}\n  connection_idle_timeout: 60s\n"

    def test_idle_sockets_at_the_cap_are_evicted_for_new_clients_but_a_request_is_not(self):
        # The oldest connection is in the middle of an ingest: head and half its body sent.
        body = gauge_batch("slow-agent", 1, ["slow.value"], value=5)
        busy = self.connect()
        busy.sendall((f"POST {INGEST} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      f"Authorization: {HEADERS['Authorization']}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:len(body) // 2])
        # One keep-alive client between two requests, then idle sockets up to the cap.
        keep_alive = self.connect()
        keep_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"200 OK", keep_alive.recv(4096))
        idle = [self.connect() for _ in range(self.CAP - 2)]
        for seq in range(1, 4):  # each finds the cap full of sockets that send nothing
            started = time.monotonic()
            status, reply = harness.http_request(self.server.url + "/healthz", timeout=5)
            self.assertEqual(status, 200, reply)
            status, reply = self.post_batch("real-agent", seq, ["real.value"])
            self.assertEqual(status, 200, reply)
            self.assertLess(time.monotonic() - started, 2.0)
        # The first of them evicted the keep-alive connection: idle longest.
        keep_alive.settimeout(5)
        self.assertTrue(closed_by_server(keep_alive))
        # A fresh wall of idle sockets pushes every older idle one out, never the request.
        wall = [self.connect() for _ in range(self.CAP - 1)]
        status, _ = harness.http_request(self.server.url + "/healthz", timeout=5)
        self.assertEqual(status, 200)
        for s in idle:
            s.settimeout(5)
            self.assertTrue(closed_by_server(s))
        wall[-1].settimeout(0.2)
        self.assertFalse(closed_by_server(wall[-1]))
        busy.sendall(body[len(body) // 2:])
        reply = b""
        while chunk := busy.recv(4096):
            reply += chunk
        self.assertIn(b"200 OK", reply.split(b"\r\n")[0], reply[:300])
        self.assertIn(b'"status":"ok"', reply)
        evicted = self.metric_value("statherd_server_connections_evicted_total")
        self.assertIsNotNone(evicted, "no eviction counter on /metrics")
        self.assertGreaterEqual(evicted, self.CAP)
        log = self.server.process.read_stderr()
        self.assertIn("evicting the longest-idle connection", log)
        self.assertLess(log.count("evicting the longest-idle"), 3, "eviction log not limited")


class SlowRequestsTest(ServerCase):
    """Slowloris: sockets that started a request header (one byte) or an unauthenticated read
    request's body and then trickle hold every slot. They are not idle, but not trusted either:
    once no idle connection is left, the oldest of them makes room for a new client. An
    authenticated ingest in its body is never evicted."""
    CAP = 16
    INTERVAL = "1s"
    CONFIG = f"limits:\n  max_connections: {CAP}\n  connection_idle_timeout: 60s\n"

    def test_slow_headers_and_slow_read_bodies_make_room_for_real_clients(self):
        body = gauge_batch("slow-agent", 1, ["slow.value"], value=5)
        busy = self.connect()  # the oldest: an authenticated ingest halfway through its body
        busy.sendall((f"POST {INGEST} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      f"Authorization: {HEADERS['Authorization']}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:len(body) // 2])
        slow_bodies = []
        for _ in range(4):  # unauthenticated POST /render, 1 byte of a 600-byte body
            s = self.connect()
            s.sendall(b"POST /render HTTP/1.1\r\nHost: x\r\nContent-Length: 600\r\n\r\nt")
            slow_bodies.append(s)
        slow_headers = []
        for _ in range(self.CAP - 5):  # one byte of a header each
            s = self.connect()
            s.sendall(b"G")
            slow_headers.append(s)
        # A header or body coming in for a second is taken for slowloris: until then a new
        # client may be refused (a request being read is not evicted at once).
        def healthz_ok():
            try:
                return harness.http_request(self.server.url + "/healthz", timeout=5)[0] == 200
            except OSError:
                return False
        harness.wait_for(healthz_ok, 15, interval=0.2, what="/healthz admitted at the cap")
        for seq in range(1, 9):  # every one served: each takes the slot the previous freed
            status, reply = harness.http_request(self.server.url + "/healthz", timeout=5)
            self.assertEqual(status, 200, reply)
            status, reply = self.post_batch("real-agent", seq, ["real.value"])
            self.assertEqual(status, 200, reply)
        # The room was made by the oldest slow socket: the first unauthenticated body...
        slow_bodies[0].settimeout(5)
        self.assertTrue(closed_by_server(slow_bodies[0]))
        slow_headers[-1].settimeout(0.2)
        self.assertFalse(closed_by_server(slow_headers[-1]))  # ... not the newest
        self.assertGreaterEqual(self.metric_value("statherd_server_connections_evicted_total"), 1)
        # ... never the ingest in its body, which completes.
        busy.sendall(body[len(body) // 2:])
        reply = b""
        while chunk := busy.recv(4096):
            reply += chunk
        self.assertIn(b"200 OK", reply.split(b"\r\n")[0], reply[:300])


class MetricsScrapeLoadTest(ServerCase):
    GAUGES = 10_000  # 14 Prometheus series each (stats x levels): 140k series, 14 MB of text
    SCRAPERS = 4
    INTERVAL = "10s"
    CONFIG = "limits:\n  max_series_per_source: 20000\n"

    def fill(self):
        names = [f"g.{i}" for i in range(self.GAUGES)]
        status, reply = self.post_batch("filler", 1, names, timeout=120)
        self.assertEqual(status, 200, reply[:300])

        def scraped():
            _, text = harness.http_request(self.server.url + "/metrics", timeout=60)
            return len(text) if text.count(b"\nstatherd_g_") >= 14 * self.GAUGES else 0
        return harness.wait_for(scraped, 60, interval=0.5, what="the gauges on /metrics")

    def scrape_loop(self, stop, counts):
        while not stop.is_set():
            status, body = harness.http_request(self.server.url + "/metrics", timeout=60)
            counts.append((status, len(body)))

    def test_scrapes_do_not_delay_healthz(self):
        size = self.fill()
        stop, counts = threading.Event(), []
        scrapers = [threading.Thread(target=self.scrape_loop, args=(stop, counts), daemon=True)
                    for _ in range(self.SCRAPERS)]
        for t in scrapers:
            t.start()
        probe = HealthProbe(self.server.url)
        try:
            harness.wait_for(lambda: len(counts) >= self.SCRAPERS, 120, what="first scrapes")
            probe.start()
            harness.wait_for(lambda: len(probe.latencies) >= 40, 120, what="40 /healthz probes")
        finally:
            probe.stop()
            stop.set()
            for t in scrapers:
                t.join(120)
        median = statistics.median(probe.latencies)
        print(f"\n/metrics of {size} bytes; {len(counts)} scrapes by {self.SCRAPERS} clients; "
              f"/healthz median {median * 1000:.1f} ms, worst {max(probe.latencies) * 1000:.0f} "
              f"ms over {len(probe.latencies)} probes")
        self.assertEqual(probe.failures, [])
        self.assertTrue(all(status == 200 for status, _ in counts), counts[:5])
        self.assertLess(median, 0.100, "/healthz waited for the /metrics scrapes")

    def test_slow_readers_share_one_body(self, readers=20):
        """`readers` clients ask for /metrics and read only its status line: they must share
        the text (on main each held its own copy: readers x size of RSS)."""
        size = self.fill()
        pid = self.server.process.pid
        rss_before = vm_rss_kib(pid)
        statuses = []
        for _ in range(readers):
            s = self.connect(rcvbuf=4096)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            statuses.append(s.recv(12)[9:12])
        growth_mib = (vm_rss_kib(pid) - rss_before) / 1024
        print(f"{readers} slow readers of a {size / 1e6:.1f} MB /metrics: RSS +{growth_mib:.0f} MiB")
        self.assertEqual(statuses.count(b"200"), readers, statuses)
        self.assertLess(growth_mib, readers * size / (1 << 20) / 4,
                        "each slow reader holds its own copy of /metrics")
        self.assertTrue(self.server.healthy())


if __name__ == "__main__":
    unittest.main()
