"""What the agent does with a spooled batch for each answer (issue #9 item 2), with a fault proxy
(fault_proxy.py) between statherd-agent and statherd-server:

- 404, 408, 413, then 503 for 14 s: every batch is kept (413: split and resent), and the
  writers' exact counter totals arrive in Carbon;
- a 400 that does not carry the server's verdict (the proxy's own) is retried, not quarantined;
- a batch the server itself declares malformed goes to the quarantine (counted in --status),
  and a writer whose first batch was quarantined still has every increment counted (the
  source's `fresh` flag stays until a batch carrying it is acknowledged).
"""

import json
import os
import subprocess
import unittest

import harness
from fault_proxy import FaultProxy
from pipeline import HOST, SENTINEL_APP, PipelineTestCase, count_sums, sum_by_app


class SpoolDeliveryTest(PipelineTestCase):
    counter_patterns = ("*.count",)

    def start_behind_proxy(self):
        self.token_file = harness.write_token_file(self.workdir)
        self.start_carbon()
        self.start_server()
        self.proxy = FaultProxy(self.server.port).start()
        self.addCleanup(self.proxy.stop)
        self.write_sentinel()
        self.agent = harness.StatherdAgent(self.workdir, self.proxy.url, self.token_file,
                                           [os.path.join(self.stats_dir, "*.mmstats")],
                                           counter_patterns=self.counter_patterns, host=HOST)
        self.managed.append(self.agent)
        self.agent.start()
        self.wait_first_batch()

    def agent_status(self):
        proc = subprocess.run([harness.binary("statherd-agent"), "--status", "--json",
                               "--spool-dir", self.agent.spool_dir],
                              capture_output=True, timeout=30)
        return json.loads(proc.stdout)

    def written_and_arrived(self, writers, app):
        """(increments written, increments that reached Carbon at app level)."""
        written = sum(sum_by_app(writers)[app].values())
        arrived = sum(self.carbon.sum(f"statherd.{app}.{name}.count")
                      for name in sum_by_app(writers)[app])
        return written, arrived

    def test_every_increment_arrives_through_404_408_413_and_503(self):
        app = "proxied"
        self.start_behind_proxy()
        # The writers' first batches meet the faults: 404, 408, 413, then 503 for 14 s.
        self.proxy.arm([("status", 404), ("status", 408), ("status", 413),
                        ("status_for", 503, 14.0)])
        writers = self.start_writers([(app, 0), (app, 1)], counters=2, rate=50, duration=30)
        # The writers must still be writing once the server is unreachable (the first 503);
        # when the 503 window ends depends on the agent's jittered backoff (up to ~30 s), so
        # that is only waited for, not timed against the writers.
        harness.wait_for(lambda: self.proxy.answered.get(503, 0) >= 1, 60, interval=0.1,
                         what="the proxy's first 503")
        self.assertTrue(all(w.process.running() for w in writers),
                        "writers finished before the 503s; raise --duration")
        harness.wait_for(self.proxy.idle, 120, interval=0.2, what="the proxy's faults served")
        for w in writers:
            w.wait_done(timeout=90)
        try:
            self.assert_carbon_sums(count_sums(writers, app), timeout=60)
        finally:
            written, arrived = self.written_and_arrived(writers, app)
            print(f"\n[figures] proxy 404/408/413 then 503 x 14 s: {written} increments "
                  f"written, {arrived:.0f} arrived; proxy answered {self.proxy.answered}, "
                  f"forwarded {self.proxy.forwarded}")
        status = self.agent_status()
        self.assertEqual(status["quarantine"]["batches"], 0)
        self.assertEqual(status["spool"]["dropped_batches"], 0)
        self.assertGreaterEqual(status["ship"]["split_batches"], 1)  # the 413

    def test_proxy_400_without_verdict_is_retried_not_quarantined(self):
        app = "plain400"
        self.start_behind_proxy()
        writers = self.start_writers([(app, 0)], counters=2, rate=50, duration=12)
        self.proxy.arm([("status", 400)] * 4)
        harness.wait_for(self.proxy.idle, 60, interval=0.2, what="the proxy's 400s served")
        for w in writers:
            w.wait_done(timeout=60)
        self.assert_carbon_sums(count_sums(writers, app))
        status = self.agent_status()
        self.assertEqual(status["quarantine"]["batches"], 0)
        self.assertEqual(status["quarantine"]["quarantined_total"], 0)
        self.assertGreaterEqual(status["ship"]["failed_attempts"], 4)

    def test_server_verdict_quarantines_batch_and_fresh_writer_keeps_its_increments(self):
        app = "quarantined"
        self.start_behind_proxy()
        # Every batch is corrupted on its way until the writer has been in two of them: the
        # writer's first batch (its source marked fresh) is among the quarantined ones.
        self.proxy.arm([("corrupt",)] * 1000)
        writers = self.start_writers([(app, 0)], counters=2, rate=50, duration=12)
        self.wait_progress(writers, increments=300)
        seen = self.proxy.corrupted
        harness.wait_for(lambda: self.proxy.corrupted >= seen + 2, 30, interval=0.1,
                         what="two more corrupted batches")
        self.proxy.disarm()
        for w in writers:
            w.wait_done(timeout=60)
        self.assert_carbon_sums(count_sums(writers, app))
        status = self.agent_status()
        self.assertGreaterEqual(status["quarantine"]["quarantined_total"], 3)
        self.assertGreaterEqual(status["quarantine"]["batches"], 3)
        qdir = os.path.join(self.agent.spool_dir, "quarantine")
        files = [f for f in os.listdir(qdir) if f.endswith(".batch")]
        self.assertEqual(len(files), status["quarantine"]["batches"])
        for f in files:
            self.assertEqual(os.stat(os.path.join(qdir, f)).st_mode & 0o777, 0o600)
        self.assertTrue(self.server.find(f"statherd.{SENTINEL_APP}.*"))


    def test_server_413_splits_batches_and_every_increment_arrives_once(self):
        """The server's own 413 (limits.max_body_bytes far below a batch): the agent splits
        until the parts fit, every part is applied once and in order."""
        self.check_server_limit_splits("split", "max_body_bytes: 2048")

    def test_batch_over_max_samples_is_split_not_quarantined(self):
        """A batch with more samples than limits.max_samples_per_batch is well formed, only too
        large: the server answers 413 (not the 400 verdict that quarantines it) and the agent
        splits it until the parts fit."""
        self.check_server_limit_splits("manysamples", "max_samples_per_batch: 50")

    def check_server_limit_splits(self, app, limit_line):
        self.token_file = harness.write_token_file(self.workdir)
        self.start_carbon()
        config = os.path.join(self.workdir, "server.yaml")
        with open(config, "w") as f:
            f.write("limits:\n  " + limit_line + "\n")
        self.server = harness.StatherdServer(self.workdir, self.token_file,
                                             graphite=self.carbon.address,
                                             extra_args=["--config", config])
        self.managed.append(self.server)
        self.server.start()
        self.write_sentinel()
        self.start_agent()
        self.wait_first_batch()
        writers = self.start_writers([(app, i) for i in range(3)], counters=40, rate=20,
                                     duration=10)
        for w in writers:
            w.wait_done(timeout=60)
        self.assert_carbon_sums(count_sums(writers, app))
        status = self.agent_status()
        self.assertGreaterEqual(status["ship"]["split_batches"], 1)
        self.assertEqual(status["quarantine"]["quarantined_total"], 0)
        self.assertEqual(status["spool"]["batches"], 0)

if __name__ == "__main__":
    unittest.main()
