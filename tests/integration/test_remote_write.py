"""statherd-server's remote_write sink against a real Prometheus (remote-write receiver on):
writers -> agent -> server -> remote write; Prometheus' query API returns the writers' exact
totals, also after Prometheus was down for a while (nothing lost within the queue bound), and
beyond the bound the oldest samples are dropped and counted exactly in the server's self-metrics."""

import json
import os
import re
import urllib.parse

import harness
from pipeline import PipelineTestCase, sum_by_app
from test_prometheus_scrape import PROMETHEUS, PrometheusServer, ensure_prometheus, prom_name

SELF_LINE = re.compile(r"^statherd_server_(\w+) (\S+)$", re.M)  # unlabelled: the server's own
TINY_QUEUE = 3000  # samples: several intervals of this pipeline's ~400 series, then overflow


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

    def start_pipeline_to(self, prom, queue_max_samples=None):
        self.token_file = harness.write_token_file(self.workdir)
        extra_args = ["--remote-write", f"{prom.url}/api/v1/write"]
        if queue_max_samples is not None:
            config = os.path.join(self.workdir, "server.yaml")
            with open(config, "w") as f:
                f.write(f"remote_write:\n  queue_max_samples: {queue_max_samples}\n")
            extra_args += ["--config", config]
        self.server = harness.StatherdServer(self.workdir, self.token_file, extra_args=extra_args)
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

    def self_metrics(self):
        """The server's own series on GET /metrics: {"remote_write_queue_depth": 0.0, ...}."""
        status, body = harness.http_request(self.server.url + "/metrics", timeout=5)
        if status != 200:
            raise AssertionError(f"GET /metrics -> {status}: {body[:300]!r}")
        return {name: float(value) for name, value in SELF_LINE.findall(body.decode())}

    def wait_self(self, predicate, what, timeout=120):
        """Polls the server's self-metrics until predicate(values) holds; returns those values."""
        def check():
            values = self.self_metrics()
            return values if predicate(values) else None
        return harness.wait_for(check, timeout, interval=0.2, what=what)

    def assert_balance(self, m):
        """Each queued sample is in one place: sent, dropped, rejected, skipped (already held
        by the receiver), queued or in flight."""
        parts = ("samples_sent_total", "samples_dropped_total", "samples_rejected_total",
                 "samples_skipped_total", "queue_depth", "samples_in_flight")
        self.assertEqual(m["remote_write_samples_queued_total"],
                         sum(m["remote_write_" + p] for p in parts), m)

    def settled(self, prom):
        """(self-metrics, samples Prometheus holds), read while the sink had nothing queued or in
        flight and its counters did not move across the Prometheus query."""
        seen = []

        def quiet():
            before = self.self_metrics()
            held = sum(len(points) for points in self.prom_samples(prom, '{__name__=~".+"}'))
            after = self.self_metrics()
            rw_before = {k: v for k, v in before.items() if k.startswith("remote_write_")}
            rw_after = {k: v for k, v in after.items() if k.startswith("remote_write_")}
            seen[:] = [rw_before, held, rw_after]
            if rw_before != rw_after:
                return None
            if after["remote_write_queue_depth"] or after["remote_write_samples_in_flight"]:
                return None
            return after, held
        try:
            return harness.wait_for(quiet, 60, interval=0.1, what="the remote_write queue drained")
        except harness.WaitTimeout as exc:
            self.fail(f"{exc}; last seen (before, Prometheus holds, after): {seen}")

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

    def test_receiver_down_beyond_the_queue_bound_drops_oldest_and_counts_them(self):
        prom = self.start_receiver()
        port = prom.port
        self.start_pipeline_to(prom, queue_max_samples=TINY_QUEUE)
        m = self.wait_self(lambda m: m.get("remote_write_samples_sent_total", 0) > 0,
                           "the first remote-write delivery")
        self.assertLessEqual(m["prometheus_series"] * 3, TINY_QUEUE,
                             "one interval must fit the queue a few times; raise TINY_QUEUE")
        failures = m["remote_write_request_failures_total"]
        prom.process.stop()
        # The sender retries the batch it holds; the writers' series are not in it.
        down = self.wait_self(lambda m: m["remote_write_request_failures_total"] > failures
                              and m["remote_write_samples_in_flight"] > 0,
                              "the sink to notice the receiver is down")
        writers = self.start_writers([("alpha", 0)], counters=1, rate=50, duration=6)
        for w in writers:
            w.wait_done(timeout=60)
        expected = sum_by_app(writers)["alpha"]
        (name, total), = expected.items()
        self.wait_server_total(name, total)
        # TINY_QUEUE more drops evict every sample queued until now (drop oldest), the writers'
        # intermediate totals among them; what stays is newer, with the final total.
        dropped = self.self_metrics()["remote_write_samples_dropped_total"]
        m = self.wait_self(
            lambda m: m["remote_write_samples_dropped_total"] >= dropped + TINY_QUEUE,
            f"{TINY_QUEUE} more samples dropped")
        self.assertEqual(m["remote_write_queue_depth"], TINY_QUEUE, "a full queue is at its bound")
        self.assertEqual(m["remote_write_samples_sent_total"],
                         down["remote_write_samples_sent_total"], "nothing sent while down")
        self.assert_balance(m)

        prom = self.start_receiver(port)  # same port and data dir
        self.assert_totals(prom, expected)
        m, held = self.settled(prom)
        self.assert_balance(m)
        self.assertEqual(m["remote_write_samples_rejected_total"], 0, m)
        self.assertEqual(held, m["remote_write_samples_sent_total"],
                         "Prometheus holds exactly the samples the server counts as sent")
        self.assertEqual(m["remote_write_samples_dropped_total"],
                         m["remote_write_samples_queued_total"] - held,
                         "the dropped counter is exactly the queued samples Prometheus never got")
        self.assertGreaterEqual(m["remote_write_samples_dropped_total"], dropped + TINY_QUEUE)
        series = f'{prom_name(name, "count_total")}{{app="alpha",level="app"}}'
        samples = self.prom_samples(prom, series)
        self.assertEqual(len(samples), 1, f"{series}: {samples}")
        values = {v for _, v in samples[0]}
        self.assertEqual(values, {float(total)},
                         f"{series}: only the newest samples (the final total) may survive the "
                         f"outage, the writers' intermediate totals were the oldest")

    def prom_samples(self, prom, selector):
        """Every raw sample of the last hour in the series `selector` matches, one list of
        (unix seconds, value) per series (count_over_time would drop the names and collide)."""
        query = urllib.parse.quote(f"{selector}[1h]")
        status, body = harness.http_request(f"{prom.url}/api/v1/query?query={query}", timeout=10)
        self.assertEqual(status, 200, body[:300])
        return [[(float(t), float(v)) for t, v in series["values"]]
                for series in json.loads(body)["data"]["result"]]


if __name__ == "__main__":
    import unittest
    unittest.main()
