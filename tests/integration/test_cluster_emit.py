"""Who emits in a cluster (issue #13, docs/CLUSTER.md "Who emits"), with real processes: etcd, two
statherd-servers (8 shards, 2 replicas: both hold every shard, each leads about half), Python
mmstats writers whose pace changes, and one statherd-agent whose batches a tee proxy copies to
both servers (what the agent's per-destination spools will do). Each server's Graphite sink
points at a line receiver of its own, so the test sees who emitted what.

While both run, every interval of a writer's series reaches Graphite from its shard's leader
(values equal where both wrote one: an interval re-sent at a takeover). SIGKILL one leader
mid-run: the other takes its shards over and emits the intervals it held meanwhile, so the sum
of the app- and host-level counts over all intervals equals the writers' exact totals, with no
interval missing and none counted twice.
"""

import os
import socket
import socketserver
import threading
import time
import unittest
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
import pipeline
from etcd_fixture import Etcd

SHARDS = 8


class LineReceiver:
    """A Carbon plaintext listener that keeps every line: [(path, value, ts)], and passes each
    on to `relay` ("host:port" of a real carbon-cache) when given."""

    def __init__(self, relay=None):
        self.lines = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                out = None
                if relay:
                    host, port = relay.rsplit(":", 1)
                    out = socket.create_connection((host, int(port)), timeout=10)
                try:
                    for raw in self.rfile:
                        parts = raw.decode(errors="replace").split()
                        if len(parts) == 3:
                            with receiver.lock:
                                receiver.lines.append((parts[0], float(parts[1]), int(parts[2])))
                        if out is not None:
                            out.sendall(raw)
                finally:
                    if out is not None:
                        out.close()

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def all_values(self, prefix):
        """{(path, ts): [every value received, in order]} of the paths starting with prefix."""
        out = {}
        with self.lock:
            for p, v, ts in self.lines:
                if p.startswith(prefix):
                    out.setdefault((p, ts), []).append(v)
        return out

    def last_values(self, prefix):
        """{(path, ts): the last value received} of the paths starting with prefix."""
        with self.lock:
            return {(p, ts): v for p, v, ts in self.lines if p.startswith(prefix)}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class TeeProxy:
    """POSTs each request to every upstream that accepts connections; answers 200 once each of
    those answered 200 (else the first other status), 503 when none is up."""

    def __init__(self, upstreams):
        self.upstreams = list(upstreams)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type", "content-encoding")}
                status = None
                for upstream in proxy.upstreams:
                    request = urllib.request.Request(upstream + self.path, data=body,
                                                     headers=headers, method="POST")
                    try:
                        with urllib.request.urlopen(request, timeout=10) as answer:
                            code = answer.status
                    except urllib.error.HTTPError as e:
                        code = e.code
                    except (urllib.error.URLError, OSError):
                        continue  # down: the other replica gets it
                    if status in (None, 200):
                        status = code
                self.send_response(status or 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def merged_emitted(testcase, receivers):
    """{(path, ts): value} over every receiver, the servers' own self-metrics left out; fails
    the test where two servers sent one interval with different values."""
    merged = {}
    for r in receivers.values():
        for key, value in r.last_values("statherd.").items():
            if key[0].startswith("statherd.self."):
                continue
            if key in merged and merged[key] != value:
                testcase.fail(f"{key} emitted as {merged[key]} and {value}")
            merged[key] = value
    return merged


def sums_of(merged, expected):
    """{path: the sum over its intervals} of each path of expected."""
    return {m: sum(v for (p, _), v in merged.items() if p == m) for m in expected}


def assert_no_gap(testcase, merged, expected):
    """One point per interval from the first to the last of each path."""
    for m in expected:
        stamps = sorted(ts for (p, ts) in merged if p == m)
        testcase.assertEqual(stamps, list(range(stamps[0], stamps[-1] + 1)), m)


class ClusterServer(harness.StatherdServer):
    def __init__(self, parent, name, token_file, etcd_url, graphite):
        workdir = os.path.join(parent, name)
        os.makedirs(workdir, exist_ok=True)
        super().__init__(workdir, token_file, graphite=graphite, interval="1s")
        self.name = name
        self.config_path = os.path.join(workdir, "server.yaml")
        with open(self.config_path, "w") as f:
            f.write(f"etcd:\n  endpoints: [{etcd_url}]\n  cluster: emit\n  id: {name}\n"
                    f"  lease_ttl: 2s\n  shards: {SHARDS}\n  replicas: 2\n")

    def argv(self):
        return super().argv() + ["--config", self.config_path]


class ClusterEmitTest(pipeline.PipelineTestCase):
    def started(self, thing):
        self.managed.append(thing)
        return thing.start()

    def cluster(self, server):
        return server.get_json("/api/v1/cluster")

    def test_a_killed_leaders_shards_are_emitted_by_the_other_replica_exactly_once(self):
        self.token_file = harness.write_token_file(self.workdir)
        etcd = self.started(Etcd(self.workdir))
        receivers = {name: LineReceiver() for name in ("s1", "s2")}
        for r in receivers.values():
            self.addCleanup(r.close)
        servers = {name: self.started(ClusterServer(self.workdir, name, self.token_file,
                                                    etcd.url, receivers[name].address))
                   for name in ("s1", "s2")}

        def settled():
            views = [self.cluster(s) for s in servers.values()]
            ok = all(v["in_force"] is not None and v["maps"][-1]["epoch"] == v["in_force"]
                     and v["maps"][-1]["members"] == ["s1", "s2"] for v in views)
            return ok and sum(v["may_emit"] for v in views) == SHARDS
        harness.wait_for(settled, 60, interval=0.2,
                         what="a map of s1 and s2 in force, every shard with an emitting leader")

        tee = TeeProxy([s.url for s in servers.values()])
        self.addCleanup(tee.close)
        self.server = servers["s1"]  # wait_first_batch reads it
        self.write_sentinel()
        self.agent = harness.StatherdAgent(self.workdir, tee.url, self.token_file,
                                           [os.path.join(self.stats_dir, "*.mmstats")],
                                           host=pipeline.HOST)
        self.started(self.agent)
        self.wait_first_batch()
        writers = self.start_writers([("alpha", 0), ("beta", 0)], counters=3, rate=150,
                                     duration=16)
        # Kill a server once it emitted writer series (both lead some shards: the first).
        def led():
            return {name: r.last_values("statherd.alpha.") or r.last_values("statherd.beta.")
                    for name, r in receivers.items()}
        harness.wait_for(lambda: any(led().values()), 60, interval=0.2,
                         what="a writer series emitted")
        self.wait_progress(writers, 1000)
        victim = "s1" if led()["s1"] else "s2"
        survivor = "s2" if victim == "s1" else "s1"
        servers[victim].kill()
        killed_at = int(time.time())
        self.server = servers[survivor]

        for w in writers:
            w.wait_done(60)
        expected = {}
        for app in ("alpha", "beta"):
            expected.update(pipeline.count_sums(writers, app))

        def emitted():
            return merged_emitted(self, receivers)

        def sums():
            return sums_of(emitted(), expected)

        try:
            harness.wait_for(lambda: sums() == expected, 90, interval=0.5,
                             what="the writers' totals in what the servers emitted")
        except harness.WaitTimeout:
            self.fail(f"emitted sums {sums()} != writers' totals {expected}\n"
                      f"survivor's view: {self.cluster(servers[survivor])}")
        merged = emitted()
        assert_no_gap(self, merged, expected)
        # One emitter per interval: both servers sent a writer's interval only around the
        # takeover (the victim's last intervals, emitted before it recorded them).
        both = {key for key in receivers["s1"].last_values("statherd.")
                if not key[0].startswith("statherd.self.")} & set(
                    receivers["s2"].last_values("statherd."))
        self.assertTrue(all(killed_at - 6 <= ts <= killed_at + 2 for _, ts in both),
                        f"{len(both)} points emitted by both servers, killed at {killed_at}: "
                        f"{sorted(both, key=lambda k: k[1])[:8]}")
        # The survivor emitted intervals it had held for the victim's shards.
        view = self.cluster(servers[survivor])
        self.assertGreater(view["emit"]["caught_up_records"], 0, view)
        self.assertEqual(view["emit"]["dropped_records"], 0, view)
        # Nothing more arrives later (a duplicate would show as a changed sum).
        last = max(ts for (_, ts) in merged)
        harness.wait_for(lambda: max(ts for (_, ts) in emitted()) >= last + 3, 30,
                         what="three more intervals")
        self.assertEqual(sums(), expected)


if __name__ == "__main__":
    unittest.main()
