"""The Python statherd v2 writer (clients/python/statherd) against an independent reader.

The reader below is written from docs/FORMAT.md ("statherd v2 stat files") with `struct` only,
so a writer bug cannot hide behind shared code. The writer runs in this process (STATHERD_DIR
is a temp dir set before import) and, where the environment matters, in child processes.
"""

import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

SOURCE_DIR = os.environ.get("STATHERD_SOURCE_DIR",
                            os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..")))
CLIENT_DIR = os.path.join(SOURCE_DIR, "clients", "python")
APP = "pywritertest"
TMP = tempfile.mkdtemp(prefix="statherd-pywriter-")
os.environ["STATHERD_DIR"] = TMP
os.environ["STATHERD_APP"] = APP
sys.path.insert(0, CLIENT_DIR)
import statherd  # noqa: E402  (after the environment is set)

GAMMA = (1 + 0.01) / (1 - 0.01)
KINDS = {1: "counter", 2: "gauge", 3: "histogram", 4: "text"}


def tearDownModule():
    if not os.environ.get("STATHERD_KEEP_TMP"):
        shutil.rmtree(TMP, ignore_errors=True)


# -- an independent reader ----------------------------------------------------------------------

def read_file(path):
    with open(path, "rb") as f:
        return parse(f.read())


def parse(data):
    magic, version, header_size, pid, start_ms, heartbeat_ms, used, generation, app_len = \
        struct.unpack_from("<8sIIQQQQQH", data, 0)
    header = {"magic": magic, "version": version, "header_size": header_size, "pid": pid,
              "start_ms": start_ms, "heartbeat_ms": heartbeat_ms, "used": used,
              "generation": generation, "app": data[58:58 + app_len].decode("utf-8"),
              "padding": data[58 + app_len:256], "size": len(data)}
    records, at = [], header_size
    while at < used:
        records.append(parse_record(data, at, used))
        at += records[-1]["size"]
    assert at == used, f"records overrun used: {at} != {used}"
    return header, records


def parse_record(data, at, used):
    size, kind, flags, name_len, tags_len, reserved = struct.unpack_from("<IBBHHH", data, at)
    assert size % 8 == 0 and at + size <= used and size >= 24, (at, size)
    assert flags == 0 and reserved == 0
    name = data[at + 12:at + 12 + name_len].decode("utf-8")
    tag_bytes = data[at + 12 + name_len:at + 12 + name_len + tags_len]
    parts = tag_bytes.split(b"\0")
    assert parts[-1] == b"" and len(parts) % 2 == 1, tag_bytes
    tags = {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts) - 1, 2)}
    seq_at = at + (12 + name_len + tags_len + 7) // 8 * 8
    assert data[at + 12 + name_len + tags_len:seq_at] == bytes(seq_at - at - 12 - name_len - tags_len)
    (seq,) = struct.unpack_from("<Q", data, seq_at)
    rec = {"offset": at, "size": size, "kind": KINDS[kind], "name": name, "tags": tags, "seq": seq,
           "seq_offset": seq_at}
    v = seq_at + 8
    if kind in (1, 2):
        assert size == v + 8 - at
        (rec["value"],) = struct.unpack_from("<d", data, v)
    elif kind == 3:
        (rec["count"], rec["sum"], rec["min"], rec["max"], rec["zero_count"], rec["offset_index"],
         n) = struct.unpack_from("<dddddiI", data, v)
        assert size == v + 48 + 8 * n - at
        rec["counts"] = list(struct.unpack_from(f"<{n}d", data, v + 48))
    elif kind == 4:
        capacity, length = struct.unpack_from("<II", data, v)
        assert capacity % 8 == 0 and length <= capacity and size == v + 8 + capacity - at
        rec["text"] = data[v + 8:v + 8 + length].decode("utf-8")
    return rec


def my_path(pid=None):
    return os.path.join(TMP, f"{APP}-{pid or os.getpid()}.statherd")


def find(name, tags=None, path=None):
    _, records = read_file(path or my_path())
    found = [r for r in records if r["name"] == name and r["tags"] == (tags or {})]
    assert len(found) == 1, f"{len(found)} records named {name} {tags}"
    return found[0]


def expected_index(x):
    return math.ceil(math.log(x) / math.log(GAMMA))


# -- tests ----------------------------------------------------------------------------------------

class FileLayoutTest(unittest.TestCase):
    def test_header_records_and_values(self):
        c = statherd.Counter("layout.requests", "requests served")
        g = statherd.Gauge("layout.queue")
        c.inc()
        c.inc(2.5)
        g.set(-4.25)
        self.assertEqual(statherd.stat_file_path(), my_path())
        header, _ = read_file(my_path())
        self.assertEqual(header["magic"], b"STHRDv2\0")
        self.assertEqual((header["version"], header["header_size"]), (2, 256))
        self.assertEqual(header["pid"], os.getpid())
        self.assertEqual(header["app"], APP)
        self.assertEqual(header["generation"], 0)
        self.assertEqual(header["padding"], bytes(len(header["padding"])))
        self.assertGreater(header["start_ms"], 1_500_000_000_000)
        self.assertGreaterEqual(header["heartbeat_ms"], header["start_ms"])
        self.assertEqual(header["size"] % 4096, 0)
        self.assertLessEqual(header["used"], header["size"])
        self.assertEqual(find("layout.requests")["kind"], "counter")
        self.assertEqual(find("layout.requests")["value"], 3.5)
        self.assertEqual(find("layout.queue")["kind"], "gauge")
        self.assertEqual(find("layout.queue")["value"], -4.25)
        self.assertEqual(os.stat(my_path()).st_mode & 0o777, 0o644)

    def test_every_seq_is_even_and_histograms_count_writes(self):
        h = statherd.Histogram("layout.seq_hist")
        info = statherd.Info("layout.seq_info")
        for v in (0.1, 0.2, 0.3):
            h.observe(v)
        info.set("a")
        _, records = read_file(my_path())
        self.assertTrue(all(r["seq"] % 2 == 0 for r in records))
        self.assertEqual(find("layout.seq_hist")["seq"], 6)
        self.assertEqual(find("layout.seq_info")["seq"], 2)

    def test_file_grows_and_old_metrics_keep_writing(self):
        first = statherd.Counter("grow.first")
        first.inc()
        size_before = read_file(my_path())[0]["size"]
        histograms = [statherd.Histogram(f"grow.h{i}") for i in range(12)]  # ~11 KB each
        first.inc(2)
        for i, h in enumerate(histograms):
            h.observe(i + 1)
        header, _ = read_file(my_path())
        self.assertGreater(header["size"], size_before)
        self.assertEqual(find("grow.first")["value"], 3)
        for i in range(12):
            self.assertEqual(find(f"grow.h{i}")["sum"], i + 1)


class MetricTest(unittest.TestCase):
    def test_labels_positional_and_keyword_share_a_child(self):
        c = statherd.Counter("labels.requests", labelnames=("method", "code"))
        c.labels("GET", 200).inc()
        c.labels(method="GET", code="200").inc(2)
        c.labels("POST", "500").inc()
        self.assertIs(c.labels("GET", "200"), c.labels("GET", 200))
        self.assertEqual(find("labels.requests", {"method": "GET", "code": "200"})["value"], 3)
        self.assertEqual(find("labels.requests", {"method": "POST", "code": "500"})["value"], 1)
        h = statherd.Histogram("labels.latency", labelnames=["route"])
        h.labels(route="/x").observe(0.5)
        self.assertEqual(find("labels.latency", {"route": "/x"})["count"], 1)

    def test_gauge_set_inc_dec(self):
        g = statherd.Gauge("gauge.depth")
        g.set(10)
        g.inc()
        g.inc(2.5)
        g.dec()
        g.dec(0.5)
        self.assertEqual(find("gauge.depth")["value"], 12)
        g.set_to_current_time()
        self.assertGreater(find("gauge.depth")["value"], 1_500_000_000)

    def test_info_text_and_truncation_at_a_character(self):
        info = statherd.Info("info.version", capacity=8)
        info.set("1.2.3")
        self.assertEqual(find("info.version")["text"], "1.2.3")
        info.set("abcdefg\u00e9")  # 7 + 2 bytes: the é does not fit in 8
        self.assertEqual(find("info.version")["text"], "abcdefg")

    def test_time_context_manager_and_decorator(self):
        h = statherd.Histogram("time.seconds")
        with h.time():
            sum(range(1000))

        @h.time()
        def work(x):
            if x < 0:
                raise KeyError(x)
            return x * 2

        self.assertEqual(work(21), 42)
        self.assertEqual(work(1), 2)
        with self.assertRaises(KeyError):
            work(-1)
        rec = find("time.seconds")
        self.assertEqual(rec["count"], 4)
        self.assertGreater(rec["sum"], 0)
        self.assertLess(rec["max"], 60)
        self.assertEqual(sum(rec["counts"]) + rec["zero_count"], 4)

    def test_invalid_input_raises_or_is_dropped_and_changes_nothing(self):
        c = statherd.Counter("bad.counter")
        c.inc(5)
        for amount in (-1, float("nan"), float("inf"), "3"):
            with self.assertRaises((ValueError, TypeError)):
                c.inc(amount)
        self.assertEqual(find("bad.counter")["value"], 5)
        g = statherd.Gauge("bad.gauge")
        g.set(1)
        with self.assertRaises(TypeError):
            g.set("x")
        self.assertEqual(find("bad.gauge")["value"], 1)
        h = statherd.Histogram("bad.hist")
        for value in ("1", None):
            with self.assertRaises(TypeError):
                h.observe(value)
        # NaN and +-Inf are dropped silently: a metrics library never raises into the request
        # path (issue #14, hostile review: observe(NaN) raised ValueError into the app).
        for value in (float("nan"), math.inf, -math.inf):
            h.observe(value)
        rec = find("bad.hist")
        self.assertEqual((rec["count"], rec["seq"] % 2), (0, 0))
        h.observe(0.5)
        rec = find("bad.hist")
        self.assertEqual((rec["count"], rec["sum"], rec["seq"] % 2), (1, 0.5, 0))
        with self.assertRaises(ValueError):
            statherd.Counter("bad.counter")  # a second metric of the same name
        with self.assertRaises(ValueError):
            statherd.Counter("")
        with self.assertRaises(ValueError):
            statherd.Counter("nul\0name")
        with self.assertRaises(ValueError):
            statherd.Histogram("bad.range", buckets=(5, 1e-3 * 0))
        with self.assertRaises(ValueError):
            statherd.Histogram("bad.range2", buckets=(1e-300, 1e300))
        labelled = statherd.Counter("bad.labelled", labelnames=("a",))
        with self.assertRaises(ValueError):
            labelled.inc()  # needs labels() first
        with self.assertRaises(ValueError):
            labelled.labels("x", "y")
        with self.assertRaises(ValueError):
            labelled.labels(b="x")
        with self.assertRaises(ValueError):
            labelled.labels("nul\0")
        with self.assertRaises(ValueError):
            c.labels("x")  # no labelnames
        with self.assertRaises(ValueError):
            statherd.Histogram("bad.labelled_h", labelnames=("a",)).time()


class HistogramBucketTest(unittest.TestCase):
    def test_bucket_index_is_ceil_ln_x_over_ln_gamma(self):
        h = statherd.Histogram("buckets.index", buckets=(1e-9, 1e12))
        values = []
        for k in range(-1000, 1380, 7):
            p = GAMMA ** k
            values += [p, math.nextafter(p, 0), math.nextafter(p, math.inf)]
        values += [1.0, 2.0, 0.5, 1e-6, 1e6, 0.001, 0.25, 3.14159, 123456.789]
        values += [i / 1000 for i in range(1, 5000)]
        for x in values:
            self.assertEqual(statherd.bucket_index(x), expected_index(x), x)
            h.observe(x)
        rec = find("buckets.index")
        expected = {}
        for x in values:
            expected[expected_index(x)] = expected.get(expected_index(x), 0) + 1
        got = {rec["offset_index"] + k: c for k, c in enumerate(rec["counts"]) if c}
        self.assertEqual(got, expected)
        self.assertEqual(rec["count"], len(values))
        self.assertEqual(rec["min"], min(values))
        self.assertEqual(rec["max"], max(values))
        self.assertAlmostEqual(rec["sum"], math.fsum(values), delta=1e-6 * math.fsum(values))

    def test_range_clamps_and_zero_count(self):
        h = statherd.Histogram("buckets.clamp", buckets=(0.01, 10))
        rec = find("buckets.clamp")
        lo, hi = expected_index(0.01), expected_index(10)
        self.assertEqual((rec["offset_index"], len(rec["counts"])), (lo, hi - lo + 1))
        self.assertEqual((rec["min"], rec["max"]), (math.inf, -math.inf))
        for x in (1e-5, 0.001, 100, 1e300, 0, -3, 1e-9, 1.0):
            h.observe(x)
        rec = find("buckets.clamp")
        self.assertEqual(rec["counts"][0], 2)
        self.assertEqual(rec["counts"][-1], 2)
        self.assertEqual(rec["counts"][expected_index(1.0) - lo], 1)
        self.assertEqual(rec["zero_count"], 3)
        self.assertEqual((rec["count"], rec["min"], rec["max"]), (8, -3, 1e300))

    def test_prometheus_style_bounds_give_the_range(self):
        h = statherd.Histogram("buckets.prom", buckets=(0.005, 0.01, 0.1, 1, 10, math.inf))
        rec = find("buckets.prom")
        self.assertEqual(rec["offset_index"], expected_index(0.005))
        self.assertEqual(len(rec["counts"]), expected_index(10) - expected_index(0.005) + 1)
        del h


class ConcurrencyTest(unittest.TestCase):
    def test_threads_lose_no_increment(self):
        c = statherd.Counter("threads.count")
        child = statherd.Counter("threads.labelled", labelnames=("k",))
        g = statherd.Gauge("threads.gauge")
        h = statherd.Histogram("threads.hist")
        n_threads, n = 8, 100_000
        start = threading.Barrier(n_threads)

        def work():
            start.wait()
            mine = child.labels("x")
            for i in range(n):
                c.inc()
                mine.inc(2)
                g.inc()
                if i % 10 == 0:
                    h.observe(0.5)

        threads = [threading.Thread(target=work) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(find("threads.count")["value"], n_threads * n)
        self.assertEqual(find("threads.labelled", {"k": "x"})["value"], 2 * n_threads * n)
        self.assertEqual(find("threads.gauge")["value"], n_threads * n)
        rec = find("threads.hist")
        self.assertEqual(rec["count"], n_threads * n // 10)
        self.assertEqual(rec["sum"], 0.5 * n_threads * n // 10)
        self.assertEqual(rec["seq"], 2 * n_threads * n // 10)

    def test_forked_child_writes_its_own_file(self):
        c = statherd.Counter("fork.count")
        h = statherd.Histogram("fork.hist")
        c.inc(5)
        h.observe(2.0)
        with open(my_path(), "rb") as f:
            parent_before = f.read()
        pid = os.fork()
        if pid == 0:  # the child: count, then exit without running the test runner's cleanup
            code = 1
            try:
                c.inc(7)
                h.observe(3.0)
                statherd.Counter("fork.child_only").inc()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        with open(my_path(), "rb") as f:
            self.assertEqual(f.read(), parent_before)
        header, _ = read_file(my_path(pid))
        self.assertEqual((header["pid"], header["app"]), (pid, APP))
        self.assertEqual(find("fork.count", path=my_path(pid))["value"], 7)
        child_hist = find("fork.hist", path=my_path(pid))
        self.assertEqual((child_hist["count"], child_hist["min"], child_hist["sum"]), (1, 3.0, 3.0))
        self.assertEqual(find("fork.child_only", path=my_path(pid))["value"], 1)
        self.assertEqual(find("fork.count")["value"], 5)
        c.inc()
        self.assertEqual(find("fork.count")["value"], 6)


class EnvironmentTest(unittest.TestCase):
    def run_writer(self, env, argv0_name):
        script = os.path.join(TMP, argv0_name)
        with open(script, "w") as f:
            f.write("import os, sys\n"
                    f"sys.path.insert(0, {CLIENT_DIR!r})\n"
                    "import statherd\n"
                    "statherd.Counter('env.count').inc(3)\n"
                    "print(os.getpid(), statherd.stat_file_path())\n")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("STATHERD_")}
        out = subprocess.run(["/usr/bin/python3", script], env={**clean, **env}, check=True,
                             stdout=subprocess.PIPE, text=True, timeout=60).stdout.split()
        return int(out[0]), out[1]

    def test_default_directory_and_app_name(self):
        tmpdir = os.path.join(TMP, "tmpdir")
        os.makedirs(tmpdir)
        pid, path = self.run_writer({"TMPDIR": tmpdir}, "my_service.py")
        self.assertEqual(path, os.path.join(tmpdir, "statherd", f"my_service-{pid}.statherd"))
        self.assertEqual(os.stat(os.path.dirname(path)).st_mode & 0o002, 0)
        header, _ = read_file(path)
        self.assertEqual((header["app"], header["pid"]), ("my_service", pid))
        self.assertEqual(find("env.count", path=path)["value"], 3)

    def test_statherd_dir_and_app_override(self):
        target = os.path.join(TMP, "explicit")
        pid, path = self.run_writer({"STATHERD_DIR": target, "STATHERD_APP": "api"}, "x.py")
        self.assertEqual(path, os.path.join(target, f"api-{pid}.statherd"))
        self.assertEqual(read_file(path)[0]["app"], "api")


if __name__ == "__main__":
    unittest.main()
