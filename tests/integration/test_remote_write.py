"""statherd-server's remote_write sink against a real Prometheus (remote-write receiver on):
writers -> agent -> server -> remote write; Prometheus' query API returns the writers' exact
totals, also after Prometheus was down for a while (nothing lost within the queue bound)."""

import os

import harness
from pipeline import PipelineTestCase, sum_by_app
from test_prometheus_scrape import PROMETHEUS, PrometheusServer, ensure_prometheus, prom_name


class RemoteWriteReceiver(PrometheusServer):
    """Debian's prometheus with its remote-write receiver on, scraping nothing."""

    def __init__(self, workdir, port=None):  # pylint: disable=super-init-not-called
        self.port = port or harness.free_port()
        self.config = os.path.join(workdir, "prometheus-rw.yml")
        self.data_dir = os.path.join(workdir, "prometheus-rw-data")
        with open(self.config, "w") as f:
            f.write("global:\n  evaluation_interval: 1s\n")
        argv = [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver"]
        self.process = harness.ManagedProcess("prometheus", argv, workdir)


class RemoteWriteTest(PipelineTestCase):
    counter_patterns = ("*.count",)

    def setUp(self):
        ensure_prometheus()
        super().setUp()

    def start_receiver(self, port=None):
        prom = RemoteWriteReceiver(self.workdir, port)
        self.managed.append(prom)
        prom.wait_ready()
        return prom

    def start_pipeline_to(self, prom):
        self.token_file = harness.write_token_file(self.workdir)
        self.server = harness.StatherdServer(
            self.workdir, self.token_file,
            extra_args=["--remote-write", f"{prom.url}/api/v1/write"])
        self.managed.append(self.server)
        self.server.start()
        self.write_sentinel()
        self.start_agent()
        self.wait_first_batch()

    def wait_server_total(self, name, total):
        """Waits until the server's own GET /metrics shows `total` for the app-level counter."""
        line = f'{prom_name(name, "count_total")}{{app="alpha",level="app"}} {total:g}\n'

        def shown():
            status, body = harness.http_request(self.server.url + "/metrics", timeout=5)
            return status == 200 and line.encode() in body
        harness.wait_for(shown, 60, interval=0.2, what=f"server /metrics line {line!r}")

    def assert_totals(self, prom, expected):
        for name, total in expected.items():
            expr = f'{prom_name(name, "count_total")}{{app="alpha",level="app"}}'
            try:
                harness.wait_for(lambda: prom.query_one(expr) == total, 120, interval=0.5,
                                 what=f"{expr} == {total} in Prometheus")
            except harness.WaitTimeout:
                self.fail(f"Prometheus has {expr} = {prom.query_one(expr)}, expected {total}")

    def test_remote_write_delivers_writer_totals(self):
        prom = self.start_receiver()
        self.start_pipeline_to(prom)
        writers = self.start_writers([("alpha", 0), ("alpha", 1)], counters=2, rate=50, duration=4)
        for w in writers:
            w.wait_done(timeout=60)
        expected = sum_by_app(writers)["alpha"]
        self.assertEqual(len(expected), 2, expected)
        self.assert_totals(prom, expected)
        rate = prom_name(next(iter(expected)), "rate") + '{app="alpha",level="app"}'
        self.assertIsNotNone(prom.query_one(rate), f"{rate} missing in Prometheus")

    def test_receiver_down_then_back_loses_nothing(self):
        prom = self.start_receiver()
        port = prom.port
        self.start_pipeline_to(prom)
        prom.process.stop()  # down while the writers run: the sink queues and retries
        writers = self.start_writers([("alpha", 0)], counters=1, rate=50, duration=4)
        for w in writers:
            w.wait_done(timeout=60)
        expected = sum_by_app(writers)["alpha"]
        for name, total in expected.items():  # the server has rolled them up (and queued them)
            self.wait_server_total(name, total)
        prom = self.start_receiver(port)  # same port and data dir
        self.assert_totals(prom, expected)


if __name__ == "__main__":
    import unittest
    unittest.main()
