"""statherd-server as a service: SIGHUP reloads sinks and rules from the YAML file while agents
ship (no counter increment lost or counted twice), a bad file keeps the running configuration,
SIGTERM emits the unfinished interval to every sink, a second SIGTERM exits at once, GET /readyz,
the server's self-metrics reach Carbon under statherd.self.server.*, and a SIGHUP replaces the
ingest token."""

import os
import re
import signal
import unittest

import harness
from pipeline import PipelineTestCase, count_sums

APP = "reloaded"


class ConfiguredServer(harness.StatherdServer):
    """statherd-server started with only --config: every setting comes from the YAML file, so
    a reload can change any of them (flags would win over the file)."""

    def __init__(self, workdir, token_file, graphite, interval="1s"):
        super().__init__(workdir, token_file, graphite=graphite, interval=interval)
        self.config_path = os.path.join(workdir, "server.yaml")
        self.write_config()

    def write_config(self, rules=(), interval=None, extra=""):
        lines = [f"listen: 127.0.0.1:{self.port}",
                 f"token_file: {self.token_file}",
                 f"interval: {interval or self.interval}",
                 f"state_dir: {self.state_dir}",
                 "graphite:",
                 f"  address: \"{self.graphite}\"",
                 "  rules:"]
        lines += [f"    - {kind}: '{pattern}'" for kind, pattern in rules] or ["    []"]
        text = "\n".join(lines) + "\n" + extra
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    def argv(self):
        return [harness.binary("statherd-server"), "--config", self.config_path]

    def self_metric(self, name):
        """The value of an unlabelled statherd_server_* series on GET /metrics (None if absent)."""
        status, body = harness.http_request(self.url + "/metrics", timeout=5)
        if status != 200:
            return None
        m = re.search(rf"^{re.escape(name)} (\S+)$", body.decode(), re.M)
        return float(m.group(1)) if m else None

    def wait_self_metric(self, name, value, timeout=30):
        harness.wait_for(lambda: self.self_metric(name) == value, timeout, interval=0.1,
                         what=f"{name} == {value} on /metrics")


class ServerLifecycleTest(PipelineTestCase):
    counter_patterns = ("*.count",)

    def start_configured_pipeline(self, interval="1s"):
        self.token_file = harness.write_token_file(self.workdir)
        self.start_carbon()
        self.server = ConfiguredServer(self.workdir, self.token_file, self.carbon.address,
                                       interval=interval)
        self.managed.append(self.server)
        self.server.start()
        self.write_sentinel()
        self.start_agent()
        # The sentinel among the server's sources: the agent's first scan is done (writers
        # started from now on are fresh and counted whole), even before any interval ended.
        harness.wait_for(lambda: any(s["app"] == "sentinel" for s in
                                     self.server.get_json("/api/v1/sources")["sources"]),
                         30, interval=0.1, what="the agent's first batch")

    def expected_sums(self, writers):
        sums = count_sums(writers, APP)
        self.assertEqual(len(sums), 4)  # 2 counters x (app, host)
        return sums

    def test_sighup_under_load_reloads_rules_and_loses_nothing(self):
        self.start_configured_pipeline()
        server = self.server
        writers = self.start_writers([(APP, 0), (APP, 1)], counters=2, rate=50, duration=30)
        first = f"statherd.{APP}.counter0.count.count"
        harness.wait_for(lambda: self.carbon.sum(first) > 0, 30, interval=0.2,
                         what=f"{first} flowing into carbon before the reload")

        # 1. A good file: a forbid rule (a sink change) and a new interval (restart-only: kept).
        server.write_config(rules=[("forbid", r"\.p99$")], interval="2s")
        os.kill(server.process.pid, signal.SIGHUP)
        server.wait_self_metric("statherd_server_reloads_ok_total", 1)
        harness.wait_for(lambda: (server.self_metric("statherd_server_graphite_lines_filtered_total")
                                  or 0) > 0, 30, interval=0.2,
                         what="the reloaded forbid rule filtering *.p99 lines")
        self.wait_progress(writers, increments=120)

        # 2. A bad file: refused with file:line:col, the running configuration stays.
        server.write_config(rules=[("forbid", r"\.p99$")], extra="graphite_typo: [\n")
        os.kill(server.process.pid, signal.SIGHUP)
        server.wait_self_metric("statherd_server_reloads_failed_total", 1)
        log = server.process.read_stderr()
        self.assertIn("interval: 1000ms -> 2000ms needs a restart; keeping 1000ms", log)
        self.assertIn("graphite: rules changed (1 rules)", log)
        self.assertRegex(log, r"reload of \S*server\.yaml failed; keeping the running "
                              r"configuration:\n\S*server\.yaml:\d+:\d+: ")
        self.assertTrue(server.healthy())
        self.wait_progress(writers, increments=120)

        # 3. Good again: rules back to none.
        server.write_config()
        os.kill(server.process.pid, signal.SIGHUP)
        server.wait_self_metric("statherd_server_reloads_ok_total", 2)
        self.assertTrue(all(w.process.running() for w in writers),
                        "the writers ended before the last reload; raise their --duration")

        for w in writers:
            w.wait_done(timeout=60)
        self.assert_carbon_sums(self.expected_sums(writers))
        self.assertTrue(all(w.process.running() is False for w in writers))

        # The server's self-metrics went through the pipeline to Carbon.
        batches = "statherd.self.server.batches.count"
        harness.wait_for(lambda: self.carbon.sum(batches) > 0, 30, interval=0.2,
                         what=f"{batches} in carbon")
        self.assertGreater(self.carbon.sum(f"statherd.self.hosts.{os.uname().nodename}"
                                           ".server.samples_in.count"), 0)
        status, body = harness.http_request(server.url + "/readyz", timeout=5)
        self.assertEqual(status, 200, body)
        self.assertIn(b'"ready":true', body)

    def test_sigterm_emits_the_unfinished_interval(self):
        # A long interval (30 min): when the server is stopped, the writers' last increments sit in an
        # interval that has not ended; only the SIGTERM drain can bring them to Carbon.
        self.start_configured_pipeline(interval="30m")
        writers = self.start_writers([(APP, 0)], counters=2, rate=50, duration=2)
        for w in writers:
            w.wait_done(timeout=60)
        before = self.server.get_json("/healthz")["batches"]
        # Two more agent batches after the writer exited: its final values are in the server.
        harness.wait_for(lambda: self.server.get_json("/healthz")["batches"] >= before + 2, 30,
                         interval=0.1, what="two more agent batches")
        self.agent.process.stop()
        self.assertEqual(self.carbon.sum(f"statherd.{APP}.counter0.count.count"), 0,
                         "the 1h interval was emitted before the drain")
        code = self.server.process.stop(timeout=30)
        self.assertEqual(code, 0, self.server.process.log_tail())
        self.assertIn("draining the last interval", self.server.process.read_stderr())
        for metric, total in self.expected_sums(writers).items():
            self.wait_carbon_sum(metric, total, timeout=60)

    def test_second_sigterm_exits_at_once(self):
        self.token_file = harness.write_token_file(self.workdir)
        dead = f"127.0.0.1:{harness.free_port()}"  # nothing listens: the Graphite flush waits
        server = ConfiguredServer(self.workdir, self.token_file, dead)
        self.managed.append(server)
        server.start()
        status, body = harness.http_request(server.url + "/readyz", timeout=5)
        self.assertEqual(status, 200, body)
        # Something queued for the dead Carbon, so the drain has lines to wait for.
        harness.wait_for(lambda: (server.self_metric("statherd_server_graphite_queue_depth")
                                  or 0) > 0, 30, interval=0.2, what="lines queued for Carbon")
        os.kill(server.process.pid, signal.SIGTERM)
        harness.wait_for(lambda: "draining the last interval" in server.process.read_stderr(), 10,
                         interval=0.05, what="the first SIGTERM's drain")
        os.kill(server.process.pid, signal.SIGTERM)
        code = server.process.wait(timeout=30)
        self.assertEqual(code, 1, server.process.log_tail())
        self.assertIn("second signal: exiting now", server.process.read_stderr())

    def test_sighup_replaces_the_ingest_token(self):
        # The token main hands to both the routes and the reload: a new token file and a SIGHUP,
        # and ingest takes the new token and refuses the old one, without a restart.
        self.token_file = harness.write_token_file(self.workdir)
        server = ConfiguredServer(self.workdir, self.token_file, "")
        self.managed.append(server)
        server.start()

        def ingest(token):
            status, _ = harness.http_request(server.url + "/api/v1/ingest", data=b"x",
                                             headers={"Authorization": f"Bearer {token}"},
                                             method="POST", timeout=5)
            return status  # 400: past the token, refused by the decoder; 401: wrong token

        new_token = "rotated-token-9876543210"
        self.assertEqual(ingest(harness.TOKEN), 400)
        self.assertEqual(ingest(new_token), 401)
        harness.write_token_file(self.workdir, new_token)
        os.kill(server.process.pid, signal.SIGHUP)
        server.wait_self_metric("statherd_server_reloads_ok_total", 1)
        self.assertEqual(ingest(new_token), 400)
        self.assertEqual(ingest(harness.TOKEN), 401)


if __name__ == "__main__":
    unittest.main()
