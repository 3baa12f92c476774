"""Hostile input: corrupt .mmstats files next to good ones, and hostile POSTs to /api/v1/ingest.
A bad file is an error for that file only; a bad payload gets 4xx and the server keeps serving."""

import os
import socket
import struct
import time
import unittest

import harness
import mmstats_v1
from pipeline import HOST, PipelineTestCase, sum_by_app

INGEST = "/api/v1/ingest"
CONTENT_TYPE = "application/x-statherd-batch"


# -- an independent encoder of the agent batch (docs/FORMAT.md, "Agent batch") ------------------

def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def zigzag(n):
    return varint((n << 1) ^ (n >> 63))


def string(s):
    raw = s.encode() if isinstance(s, str) else s
    return varint(len(raw)) + raw


def encode_batch(agent_id, seq, sources):
    """sources: [(host, app, pid, start_ms, path, fresh, [(name, kind, value)])], kind 1|2."""
    now_ms = int(time.time() * 1000)
    out = b"SHB" + bytes([1]) + string(agent_id) + varint(seq) + zigzag(now_ms) + varint(len(sources))
    for host, app, pid, start_ms, path, fresh, samples in sources:
        out += string(host) + string(app) + zigzag(pid) + zigzag(start_ms) + string(path)
        out += bytes([1 if fresh else 0]) + varint(len(samples))
        for name, kind, value in samples:
            out += string(name) + varint(0) + bytes([kind]) + zigzag(now_ms) + struct.pack("<d", value)
    return out + varint(0)


def write_corrupt_files(stats_dir):
    """Three bad files named like good ones (owned by this live process); returns their paths."""
    pid = os.getpid()
    good_image = mmstats_v1.encode_file([("a.count", "Q", 5, True), ("b.count", "Q", 6, True)])
    cut = 1 + 2 + len("a.count") + 2 + 1 + 1 + 16 + 2 + 3  # inside the second field's label
    images = {
        "truncated": good_image[:cut],
        "garbage": b"\x01" + struct.pack("=H", 60000) + b"\xff" * 200,
        "badversion": b"\x09" + good_image[1:],
    }
    paths = []
    for i, (name, data) in enumerate(images.items()):
        path = os.path.join(stats_dir, f"{name}-{pid}-{800000 + i}.mmstats")
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths


class CorruptFileTest(PipelineTestCase):
    counter_patterns = ("*.count",)

    def test_corrupt_files_are_reported_and_good_files_still_arrive(self):
        self.start_pipeline(with_carbon=False)
        bad_paths = write_corrupt_files(self.stats_dir)
        writers = self.start_writers([("goodapp", 0), ("goodapp", 1)], counters=2, rate=50,
                                     duration=3)
        for w in writers:
            w.wait_done(timeout=30)
        expected = sum_by_app(writers)["goodapp"]

        def render_sum(target):
            series = self.server.render(target)
            return sum(p[0] for s in series for p in s["datapoints"] if p[0] is not None)
        for name, total in expected.items():
            target = f"statherd.goodapp.{name}.count"
            harness.wait_for(lambda: abs(render_sum(target) - total) < 1e-6, 30, interval=0.2,
                             what=f"/render sum of {target} == {total}")
        # Each bad file is reported in /api/v1/sources: agents[].errors[] = {"source", "message"}.
        def reported_errors():
            listing = self.server.get_json("/api/v1/sources")
            return {e["source"]: e["message"] for a in listing["agents"] for e in a.get("errors", [])}
        for path in bad_paths:
            harness.wait_for(lambda: path in reported_errors(), 30, interval=0.2,
                             what=f"{os.path.basename(path)} in /api/v1/sources agents[].errors")
        errors = reported_errors()
        for path in bad_paths:
            self.assertIn("mmstats", errors[path])
        self.assertFalse([p for p in errors if "goodapp" in p], errors)
        self.assertTrue(self.agent.process.running())
        self.assertTrue(self.server.healthy())

    def test_once_reports_bad_files_on_stderr_and_prints_good_ones(self):
        bad_paths = write_corrupt_files(self.stats_dir)
        pid = os.getpid()
        good = os.path.join(self.stats_dir, f"goodapp-{pid}-{pid}.mmstats")
        mmstats_v1.write_file(good, [("requests.count", "Q", 99, True), ("queue.depth", "I", 4, True)])
        code, samples, stderr = harness.run_agent_once([os.path.join(self.stats_dir, "*.mmstats")],
                                                       counter_patterns=["*.count"])
        self.assertEqual(code, 0, f"exit code must be 0 while a source succeeded; stderr:\n{stderr}")
        for path in bad_paths:
            self.assertIn(os.path.basename(path), stderr)
        values = {s["name"]: s["value"] for s in samples if s["source"] == good}
        self.assertEqual(values, {"requests.count": 99, "queue.depth": 4})
        self.assertFalse([s for s in samples if s["source"] in bad_paths and s["name"] == "b.count"])

    def test_once_exits_nonzero_when_every_source_fails(self):
        write_corrupt_files(self.stats_dir)
        code, samples, stderr = harness.run_agent_once([os.path.join(self.stats_dir, "*.mmstats")])
        self.assertNotEqual(code, 0, stderr)
        self.assertEqual(samples, [])


class HostileIngestTest(PipelineTestCase):
    def setUp(self):
        super().setUp()
        self.token_file = harness.write_token_file(self.workdir)
        self.start_server(graphite="-")

    def post(self, body, token=harness.TOKEN, content_type=CONTENT_TYPE):
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return harness.http_request(self.server.url + INGEST, data=body, headers=headers,
                                    method="POST")

    def assert_4xx(self, status, body, what):
        self.assertTrue(400 <= status < 500, f"{what}: got {status} {body[:300]!r}")
        self.assertTrue(self.server.healthy(), f"server unhealthy after {what}")

    def raw_request(self, head, body=b""):
        """Sends raw bytes; returns the status code of the answer (or None if closed silently)."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as sock:
            sock.sendall(head + body)
            data = b""
            try:
                while b"\r\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                return None
        if not data.startswith(b"HTTP/1."):
            return None
        return int(data.split(b" ")[1])

    def test_hostile_payloads_get_4xx_and_server_keeps_serving(self):
        source = (HOST, "hostile", 4242, 1_700_000_000_000, "/tmp/hostile-4242-4242.mmstats", True,
                  [("requests.count", 1, 10.0), ("queue.depth", 2, 3.0)])
        valid = encode_batch("hostile-agent", 1, [source])
        self.assert_4xx(*self.post(valid, token=None), "no token")
        self.assert_4xx(*self.post(valid, token="wrong-token"), "wrong token")
        self.assert_4xx(*self.post(os.urandom(4096)), "random bytes")
        self.assert_4xx(*self.post(b""), "empty body")
        self.assert_4xx(*self.post(valid[: len(valid) // 2]), "truncated batch")
        self.assert_4xx(*self.post(valid + b"\x00"), "trailing byte")
        huge_string = b"SHB\x01" + varint(1 << 62) + b"x" * 16
        self.assert_4xx(*self.post(huge_string), "agent_id length 2^62")
        huge_sources = b"SHB\x01" + string("a") + varint(1) + zigzag(0) + varint(1 << 40)
        self.assert_4xx(*self.post(huge_sources), "2^40 sources")
        overlong_varint = b"SHB\x01" + b"\xff" * 20
        self.assert_4xx(*self.post(overlong_varint), "20-byte varint")

        head = (f"POST {INGEST} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {harness.TOKEN}\r\n"
                f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: 100000000000\r\n\r\n").encode()
        status = self.raw_request(head, b"SHB\x01")
        self.assertIsNotNone(status, "no HTTP answer to a 100 GB Content-Length")
        self.assert_4xx(status, b"", "Content-Length 100 GB")

        # The server still ingests a valid batch and serves it.
        status, body = self.post(valid)
        self.assertEqual(status, 200, body)
        harness.wait_for(lambda: self.server.render("statherd.hostile.queue.depth.max"), 30,
                         interval=0.2, what="the valid batch's gauge in /render")
        series = self.server.render("statherd.hostile.queue.depth.max")
        self.assertEqual({p[0] for p in series[0]["datapoints"] if p[0] is not None}, {3.0})

    def test_replayed_batch_is_counted_once(self):
        def source(value):
            return (HOST, "replay", 4343, 1_700_000_000_000, "/tmp/replay-4343-4343.mmstats", True,
                    [("requests.count", 1, value)])
        for seq, value in ((1, 10.0), (1, 10.0), (2, 25.0), (2, 25.0), (3, 40.0)):
            status, body = self.post(encode_batch("replay-agent", seq, [source(value)]))
            self.assertEqual(status, 200, body)
        target = "statherd.replay.requests.count.count"

        def total():
            series = self.server.render(target)
            return sum(p[0] for s in series for p in s["datapoints"] if p[0] is not None)
        harness.wait_for(lambda: total() >= 40, 30, interval=0.2, what=f"{target} in /render")
        self.assertEqual(total(), 40)


if __name__ == "__main__":
    unittest.main()
