"""statherd-server restarted on the same state dir (SIGKILL twice, SIGTERM twice) while writers
count, with one real Prometheus that both scrapes GET /metrics and receives remote_write.
Afterwards, for the app-level total of each writer counter, in both copies (scraped and
remote-written): the raw value equals the increments written, resets() over the run is 0, no
sample was refused as out of order (server and Prometheus logs), and the latest sample was
written after the last restart (issue #15)."""

import os
import re
import time
import unittest

import harness
from pipeline import PipelineTestCase, sum_by_app
from test_prometheus_scrape import PROMETHEUS, PrometheusServer, ensure_prometheus, prom_name

APP = "restarts"
RESTARTS = ("kill", "term", "kill", "term")


class ScrapingReceiver(PrometheusServer):
    """Debian's prometheus scraping `target` every 1 s (job "statherd") with its remote-write
    receiver on: scraped series carry job/instance labels, remote-written ones do not."""

    def __init__(self, workdir, target):  # pylint: disable=super-init-not-called
        self.port = harness.free_port()
        self.config = os.path.join(workdir, "prometheus.yml")
        self.data_dir = os.path.join(workdir, "prometheus-data")
        with open(self.config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: statherd\n    scrape_interval: 1s\n"
                    "    scrape_timeout: 1s\n"
                    f"    static_configs:\n      - targets: ['{target}']\n")
        argv = [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver"]
        self.process = harness.ManagedProcess("prometheus", argv, workdir)


class PrometheusRestartTest(PipelineTestCase):
    counter_patterns = ("*.count",)

    def setUp(self):
        ensure_prometheus()
        super().setUp()

    def start_statherd_server(self, port, state_dir=None):
        self.server = harness.StatherdServer(
            self.workdir, self.token_file, port=port, state_dir=state_dir,
            extra_args=["--remote-write", f"{self.prom.url}/api/v1/write"])
        self.managed.append(self.server)
        self.server.start()
        return self.server

    def self_metric(self, name):
        """One unlabelled statherd_server_* value on the server's GET /metrics (0 if absent)."""
        status, body = harness.http_request(self.server.url + "/metrics", timeout=5)
        self.assertEqual(status, 200)
        match = re.search(rf"^statherd_server_{name} (\S+)$", body.decode(), re.M)
        return float(match.group(1)) if match else 0.0

    def selectors(self, name):
        metric = prom_name(name, "count_total")
        return {"remote_write": f'{metric}{{job="",app="{APP}",level="app"}}',
                "scrape": f'{metric}{{job="statherd",app="{APP}",level="app"}}'}

    def wait_delivered_since(self, name, since_s):
        """Both copies hold a sample written after `since_s` (unix seconds): the restarted
        server's output reaches Prometheus before the next fault."""
        for what, sel in self.selectors(name).items():
            harness.wait_for(lambda: (self.prom.query_one(f"timestamp({sel})") or 0) >= since_s,
                             60, interval=0.2, what=f"{what}: a sample of {sel} after {since_s}")

    def test_totals_continue_across_sigkill_and_sigterm_restarts(self):
        self.token_file = harness.write_token_file(self.workdir)
        port = harness.free_port()
        self.prom = ScrapingReceiver(self.workdir, f"127.0.0.1:{port}")
        self.managed.append(self.prom)
        self.prom.wait_ready()
        self.start_statherd_server(port)
        self.write_sentinel()
        self.start_agent()
        self.wait_first_batch()
        writers = self.start_writers([(APP, 0), (APP, 1)], counters=1, rate=50, duration=30)
        name = "counter0.count"  # the writers' only counter (clients/python/mmstats_writer_cli.py)

        restarted_at = time.time()
        for how in RESTARTS:
            self.wait_progress(writers, increments=300)  # ~3 intervals counted and emitted
            self.wait_delivered_since(name, restarted_at)
            if how == "kill":
                self.server.kill()
            else:
                self.assertEqual(self.server.stop(), 0, "SIGTERM: the server drains and exits 0")
            self.wait_progress(writers, increments=150)  # counting on while the server is down
            restarted_at = time.time()
            self.start_statherd_server(port, state_dir=self.server.state_dir)
            if how == "kill":  # WAL replay re-emits delivered intervals: none may be re-sent
                harness.wait_for(lambda: self.self_metric("remote_write_samples_skipped_total") > 0,
                                 30, interval=0.2, what="re-emitted samples skipped by remote_write")
        self.assertTrue(all(w.process.running() for w in writers),
                        "writers finished before the last restart; raise --duration")
        for w in writers:
            w.wait_done(timeout=90)
        expected = sum_by_app(writers)[APP]
        self.assertEqual(list(expected), [name], expected)
        total = expected[name]

        selectors = self.selectors(name)
        try:
            harness.wait_for(lambda: all(self.prom.query_one(sel) == total
                                         for sel in selectors.values()),
                             60, interval=0.5, what=f"both copies == {total}")
        except harness.WaitTimeout:
            pass  # the figures below say what differs
        figures = {what: {"value": self.prom.query_one(sel),
                          "resets": self.prom.query_one(f"resets({sel}[1h])"),
                          "latest_after_last_restart_s":
                              (self.prom.query_one(f"timestamp({sel})") or 0) - restarted_at}
                   for what, sel in selectors.items()}
        servers = self.server.process.read_stderr()  # one file, every run appended to it
        figures["server 'HTTP 400' log lines"] = servers.count("HTTP 400")
        figures["prometheus 'Out of order sample' log lines"] = \
            self.prom.process.read_stderr().count("Out of order sample")
        report = f"increments written {total}; figures {figures}"
        for what in selectors:
            self.assertEqual(figures[what]["value"], total, f"{what}: {report}")
            self.assertEqual(figures[what]["resets"], 0, f"{what} went down: {report}")
            self.assertGreaterEqual(figures[what]["latest_after_last_restart_s"], -1,
                                    f"{what}: the latest sample predates the last restart: {report}")
        self.assertEqual(figures["server 'HTTP 400' log lines"], 0, report)
        self.assertEqual(figures["prometheus 'Out of order sample' log lines"], 0, report)


if __name__ == "__main__":
    unittest.main()
