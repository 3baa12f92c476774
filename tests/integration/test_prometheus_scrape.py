"""A real Prometheus server scrapes statherd-server's GET /metrics (writers -> agent -> server),
its query API returns the writers' exact totals, and `promtool check metrics` passes."""

import json
import os
import re
import shutil
import subprocess
import urllib.parse

import harness
import mmstats_v1
from pipeline import HOST, PipelineTestCase, sum_by_app

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
GAUGE_APP = "gaugeapp"
GAUGE_VALUES = (3, 7, 11)


def prom_name(metric, stat):
    return "statherd_" + re.sub(r"[^a-zA-Z0-9_:]", "_", f"{metric}_{stat}")


def ensure_prometheus():
    if os.access(PROMETHEUS, os.X_OK) and os.access(PROMTOOL, os.X_OK):
        return
    script = os.path.join(os.environ.get("STATHERD_SOURCE_DIR", "../.."), "scripts", "install-deps.sh")
    subprocess.run(["bash", script, "test"], check=True, timeout=900)


class PrometheusServer:
    """Debian's prometheus on a free loopback port with a temp data dir, scraping every 1 s."""

    def __init__(self, workdir, target):
        self.port = harness.free_port()
        self.config = os.path.join(workdir, "prometheus.yml")
        self.data_dir = os.path.join(workdir, "prometheus-data")
        with open(self.config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: statherd\n    scrape_interval: 1s\n"
                    "    scrape_timeout: 1s\n"
                    f"    static_configs:\n      - targets: ['{target}']\n")
        argv = [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        self.process = harness.ManagedProcess("prometheus", argv, workdir)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=60):
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited\n{self.process.log_tail()}")
            if not harness.port_open("127.0.0.1", self.port):
                return False
            status, _ = harness.http_request(self.url + "/-/ready", timeout=2)
            return status == 200
        harness.wait_for(ready, timeout, interval=0.2, what="prometheus /-/ready")

    def query(self, expr):
        """{frozenset(labels.items()): value} of an instant query."""
        q = urllib.parse.quote(expr)
        status, body = harness.http_request(f"{self.url}/api/v1/query?query={q}", timeout=5)
        if status != 200:
            return {}
        data = json.loads(body)["data"]["result"]
        return {frozenset(r["metric"].items()): float(r["value"][1]) for r in data}

    def query_one(self, expr):
        values = list(self.query(expr).values())
        return values[0] if len(values) == 1 else None


class PrometheusScrapeTest(PipelineTestCase):
    counter_patterns = ("*.count",)

    def setUp(self):
        ensure_prometheus()
        super().setUp()

    def test_prometheus_scrapes_totals_gauges_and_promtool_accepts(self):
        self.start_pipeline(with_carbon=False)
        prom = PrometheusServer(self.workdir, f"127.0.0.1:{self.server.port}")
        self.managed.append(prom)
        prom.wait_ready()
        pid = os.getpid()
        for i, value in enumerate(GAUGE_VALUES):
            mmstats_v1.write_file(os.path.join(self.stats_dir, f"{GAUGE_APP}-{pid}-{900000 + i}.mmstats"),
                                  [("queue.depth", "I", value, True)])
        writers = self.start_writers([("alpha", 0), ("alpha", 1)], counters=2, rate=50, duration=4)
        for w in writers:
            w.wait_done(timeout=60)
        expected = sum_by_app(writers)["alpha"]
        self.assertEqual(len(expected), 2, expected)

        for name, total in expected.items():
            metric = prom_name(name, "count_total")
            app_expr = f'{metric}{{app="alpha",level="app"}}'
            host_expr = f'sum({metric}{{app="alpha",level="host",host="{HOST}"}})'
            for expr in (app_expr, host_expr):
                try:
                    harness.wait_for(lambda: prom.query_one(expr) == total, 90, interval=0.5,
                                     what=f"{expr} == {total} in Prometheus")
                except harness.WaitTimeout:
                    self.fail(f"Prometheus has {expr} = {prom.query_one(expr)}, expected {total}")
        gauge = prom_name("queue.depth", "max") + f'{{app="{GAUGE_APP}",level="app"}}'
        harness.wait_for(lambda: prom.query_one(gauge) == 11, 60, interval=0.5,
                         what=f"{gauge} == 11")
        self.assertEqual(prom.query_one(prom_name("queue.depth", "summed")
                                        + f'{{app="{GAUGE_APP}",level="app"}}'), 21)
        self.assertGreater(prom.query_one("statherd_server_batches_total") or 0, 0)
        # The server's memory as Prometheus scraped it: RSS, and the allocator's figures.
        self.assertGreater(prom.query_one("statherd_server_resident_bytes") or 0, 1 << 20)
        self.assertGreater(prom.query_one("statherd_server_heap_allocated_bytes") or 0, 1 << 16)
        self.assertGreater(prom.query_one("statherd_server_heap_free_bytes") or 0, 0)
        self.assertEqual(prom.query_one('up{job="statherd"}'), 1)
        self.check_scrape_with_promtool()

    def check_scrape_with_promtool(self):
        status, body = harness.http_request(self.server.url + "/metrics", timeout=5)
        self.assertEqual(status, 200)
        self.assertIn(b"# TYPE statherd_server_batches_total counter", body)
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                               timeout=60)
        self.assertEqual(check.returncode, 0,
                         f"promtool check metrics failed:\n{check.stdout.decode()}"
                         f"{check.stderr.decode()}")


if __name__ == "__main__":
    import unittest
    unittest.main()
