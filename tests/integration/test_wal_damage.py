"""The server's WAL on disk is damaged or holds a poison batch: acknowledged batches, then a
flipped byte in the WAL, kill -9, restart: every other acknowledged batch is replayed and the
damage is reported on /metrics and /readyz. A batch over limits.max_samples_per_batch, sent to
a server under a memory limit, is refused before it is acknowledged; the server keeps running
and restarts cleanly."""

import json
import os
import shutil
import struct
import tempfile
import unittest

import harness
from test_bad_input import CONTENT_TYPE, INGEST, encode_batch, string, varint, zigzag

APP = "waldmg"
BATCHES = 40
DAMAGED = 17  # index of the batch whose WAL record gets a flipped byte


def wal_record_offsets(path):
    """Offsets of (record start, body start) per record: format 2 (file header) or format 1."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    if data.startswith(b"SHWAL2\n\0"):
        pos = 8
        while pos + 16 <= len(data):
            length = struct.unpack_from("<I", data, pos + 4)[0]
            out.append((pos, pos + 16))
            pos += 16 + length
    else:
        pos = 0
        while pos + 8 <= len(data):
            length = struct.unpack_from("<I", data, pos)[0]
            out.append((pos, pos + 8))
            pos += 8 + length
    return out


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x40]))


def metric_value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class WalDamageTest(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="statherd-wal-damage-")
        self.token_file = harness.write_token_file(self.workdir)
        self.server = None

    def tearDown(self):
        if self.server is not None and self.server.process is not None:
            if self.server.process.running():
                self.server.kill()
            if self._outcome.result.failures or self._outcome.result.errors:
                print(self.server.process.log_tail())
        if not os.environ.get("STATHERD_KEEP_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def post(self, body):
        return harness.http_request(self.server.url + INGEST, data=body, method="POST", timeout=60,
                                    headers={"Content-Type": CONTENT_TYPE,
                                             "Authorization": f"Bearer {harness.TOKEN}"})

    def app_count(self):
        series = self.server.render(f"statherd.{APP}.hits.count.count")
        return sum(v for s in series for v, _ in s["datapoints"] if v is not None)

    def test_flipped_byte_costs_one_batch_and_is_reported(self):
        self.server = harness.StatherdServer(self.workdir, self.token_file).start()
        # Batch i: a new (fresh) process whose counter hits.count is i + 1, so the app's total
        # tells exactly which batches were replayed.
        for i in range(BATCHES):
            body = encode_batch("walagent", i + 1, [("h1", APP, 5000 + i, 1000, f"/p{i}", True,
                                                     [("hits.count", 1, float(i + 1))])])
            status, answer = self.post(body)
            self.assertEqual(status, 200, answer)
        self.server.kill()

        wals = sorted(f for f in os.listdir(self.server.state_dir) if f.startswith("wal-"))
        self.assertEqual(len(wals), 1, wals)
        path = os.path.join(self.server.state_dir, wals[0])
        records = wal_record_offsets(path)
        self.assertEqual(len(records), BATCHES)
        start, body = records[DAMAGED]
        flip_byte(path, body + 30)

        self.server.start()
        want = sum(range(1, BATCHES + 1)) - (DAMAGED + 1)
        try:
            harness.wait_for(lambda: self.app_count() == want, 30, interval=0.2,
                             what=f"app total {want} after replay")
        except harness.WaitTimeout:
            self.fail(f"app total {self.app_count()} != {want} (every batch but #{DAMAGED})")
        _, metrics = harness.http_request(self.server.url + "/metrics")
        self.assertEqual(metric_value(metrics.decode(), "statherd_server_wal_damaged_records_total"), 1)
        status, ready = harness.http_request(self.server.url + "/readyz")
        self.assertEqual(status, 200, ready)
        recovery = json.loads(ready)["wal_recovery"]
        self.assertEqual(recovery["damaged_records"], 1)
        self.assertIn(f"{wals[0]} offset {start} ", recovery["last_damage"])
        log = self.server.process.read_stderr()
        self.assertIn(f"damaged record at offset {start}", log)
        self.assertTrue(os.path.exists(os.path.join(self.server.state_dir, "quarantine", wals[0])))

    def test_poison_batch_is_refused_under_a_memory_limit_and_restart_is_clean(self):
        config = os.path.join(self.workdir, "server.yaml")
        with open(config, "w") as f:
            f.write("limits:\n  max_samples_per_batch: 100000\n")
        self.server = harness.StatherdServer(self.workdir, self.token_file,
                                             extra_args=["--config", config])
        argv = self.server.argv
        # 1.5 GB of address space: the server must refuse the poison batch, not die of it.
        self.server.argv = lambda: ["prlimit", "--as=1500000000", "--"] + argv()
        self.server.start()
        now = 1_700_000_000_000
        parts = [b"SHB\x01", string("poisoner"), varint(1), zigzag(now), varint(1),
                 string("h1"), string(APP), zigzag(7), zigzag(1000), string("/poison"), b"\x00",
                 varint(200_000)]
        for i in range(200_000):
            parts += [string(f"g{i:06d}"), varint(0), b"\x02", zigzag(now), struct.pack("<d", i)]
        parts.append(varint(0))
        status, answer = self.post(b"".join(parts))
        # Well formed but over the limit: 413, so a real agent splits it (no 400 verdict that
        # would quarantine it), and nothing of it is applied.
        self.assertEqual(status, 413, answer)
        self.assertIn(b"over limit", answer)
        ok = encode_batch("poisoner", 2, [("h1", APP, 7, 1000, "/poison", True,
                                           [("hits.count", 1, 3.0)])])
        self.assertEqual(self.post(ok)[0], 200)
        self.assertTrue(self.server.healthy())
        self.server.kill()
        self.server.start()
        harness.wait_for(lambda: self.app_count() == 3, 30, interval=0.2, what="app total 3")
        _, metrics = harness.http_request(self.server.url + "/metrics")
        text = metrics.decode()
        self.assertEqual(metric_value(text, "statherd_server_wal_quarantined_records_total"), 0)
        self.assertEqual(metric_value(text, "statherd_server_wal_damaged_records_total"), 0)


if __name__ == "__main__":
    unittest.main()
