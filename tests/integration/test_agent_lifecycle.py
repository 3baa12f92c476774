"""statherd-agent's lifecycle under load: SIGHUP reloads a changed configuration (and survives a
broken one), SIGTERM drains, `--status` tells alive from not running. Every increment written
by the writers must reach Carbon exactly once through all of it."""

import json
import os
import re
import signal
import socket
import subprocess
import unittest

import harness
from pipeline import HOST, SENTINEL_APP, PipelineTestCase, count_sums

OLD_APP = "lifea"   # watched from the start (glob A)
NEW_APP = "lifeb"   # added by the reload (glob B)


class AgentLifecycleTest(PipelineTestCase):
    counter_patterns = ("*.count",)

    # -- helpers ----------------------------------------------------------------------------

    def write_config(self, apps, agent_id="lifecycle-1", v2_dir="v2-before", broken=False):
        """The agent's YAML file: one mmstats glob per app (plus the sentinel)."""
        self.config_path = os.path.join(self.workdir, "agent.yaml")
        globs = [os.path.join(self.stats_dir, f"{app}-*.mmstats") for app in (SENTINEL_APP,) + apps]
        lines = [f"agent_id: {agent_id}",
                 "mmstats:",
                 f"  globs: {json.dumps(globs)}",
                 "  counter_patterns: ['*.count']",
                 "statherd_v2:",
                 f"  globs: [{json.dumps(os.path.join(self.workdir, v2_dir, '*.statherd'))}]"]
        if broken:
            lines.insert(1, "interval: [this is not a duration")
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.config_path)  # the agent never reads half a file
        return self.config_path

    def start_pipeline_with_config(self, apps):
        self.token_file = harness.write_token_file(self.workdir)
        self.start_carbon()
        self.start_server()
        self.write_sentinel()
        self.write_config(apps)
        # No --mmstats-glob / --counter-pattern flags: the globs come from the file.
        self.agent = harness.StatherdAgent(self.workdir, self.server.url, self.token_file, [],
                                           host=HOST, extra_args=["--config", self.config_path])
        self.managed.append(self.agent)
        self.agent.start()
        self.wait_first_batch()

    def agent_log(self):
        return self.agent.process.read_stderr()

    def sighup_and_wait_for(self, text, count):
        """SIGHUP the agent; waits until `text` appears `count` times in its log."""
        os.kill(self.agent.process.pid, signal.SIGHUP)
        harness.wait_for(lambda: self.agent_log().count(text) >= count, 30, interval=0.1,
                         what=f"{text!r} x{count} in the agent's log")
        self.assertTrue(self.agent.process.running(), self.agent.process.log_tail())

    def status(self, *extra):
        argv = [harness.binary("statherd-agent"), "--status", "--spool-dir", self.agent.spool_dir]
        proc = subprocess.run(argv + list(extra), capture_output=True, timeout=30, text=True)
        return proc.returncode, proc.stdout, proc.stderr

    def expected_sums(self, writers, app):
        sums = count_sums(writers, app)
        self.assertEqual(len(sums), 4)  # 2 counters x (app, host)
        return sums

    # -- tests ------------------------------------------------------------------------------

    def test_sighup_under_load_loses_and_doubles_nothing(self):
        self.start_pipeline_with_config((OLD_APP,))
        old = self.start_writers([(OLD_APP, 0), (OLD_APP, 1)], counters=2, rate=50, duration=16)
        first = f"statherd.{OLD_APP}.counter0.count.count"
        harness.wait_for(lambda: self.carbon.sum(first) > 0, 30, interval=0.2,
                         what=f"{first} flowing into carbon before the reload")

        # Add glob B, change the v2 globs (that source is rebuilt) and agent_id (needs a restart).
        self.write_config((OLD_APP, NEW_APP), agent_id="lifecycle-2", v2_dir="v2-after")
        self.sighup_and_wait_for("reloaded: ", 1)
        log = self.agent_log()
        self.assertIn("mmstats_v1 rebuilt", log)
        self.assertIn("statherd_v2 rebuilt", log)
        self.assertIn("agent_id changed to lifecycle-2: needs a restart, keeping lifecycle-1", log)
        new = self.start_writers([(NEW_APP, 0), (NEW_APP, 1)], counters=2, rate=50, duration=8)
        self.wait_progress(old + new, increments=600)

        # A broken file changes nothing: the error names file:line, the agent keeps reading.
        self.write_config((OLD_APP,), broken=True)
        self.sighup_and_wait_for("reload failed, keeping the running configuration", 1)
        self.assertRegex(self.agent_log(), re.escape(self.config_path) + r":\d+:\d+: YAML")
        self.wait_progress(new, increments=300)  # glob B is still read after the failed reload

        code, out, err = self.status()
        self.assertEqual(code, 0, out + err)
        self.assertIn("alive", out)
        code, out, _ = self.status("--json")
        self.assertEqual(code, 0, out)
        status = json.loads(out)
        self.assertEqual(status["pid"], self.agent.process.pid)
        self.assertEqual(status["config_file"], self.config_path)
        self.assertEqual((status["reloads"]["ok"], status["reloads"]["failed"]), (1, 1))
        self.assertEqual(status["reloads"]["last_result"], "failed")
        self.assertIn(self.config_path, status["reloads"]["last_message"])

        for w in old + new:
            w.wait_done(timeout=60)
        sums = self.expected_sums(old, OLD_APP)
        sums.update(self.expected_sums(new, NEW_APP))
        # The agent's own counters travel the same way: one good and one failed reload.
        sums["statherd.self.agent.reloads.result.ok.count"] = 1
        sums["statherd.self.agent.reloads.result.failed.count"] = 1
        self.assert_carbon_sums(sums)
        self.assertTrue(self.agent.process.running())

    def test_sigterm_drains_what_was_read_and_status_says_not_running(self):
        self.start_pipeline_with_config((OLD_APP,))
        writers = self.start_writers([(OLD_APP, 0), (OLD_APP, 1)], counters=2, rate=50, duration=4)
        for w in writers:
            w.wait_done(timeout=60)
        # Right after the writers' last increments: the drain's final read must carry them.
        code = self.agent.process.stop(timeout=30)
        self.assertEqual(code, 0, self.agent.process.log_tail())
        log = self.agent_log()
        self.assertIn("SIGTERM: stopping", log)

        code, out, _ = self.status()
        self.assertEqual(code, 1, out)
        self.assertIn("NOT RUNNING", out)
        code, out, _ = self.status("--json")
        status = json.loads(out)
        self.assertEqual(status["state"], "stopped")

        sums = self.expected_sums(writers, OLD_APP)
        if status["spool"]["batches"] == 0:
            # Everything was shipped during the drain; nothing runs any more that could add more.
            for metric, total in sums.items():
                self.wait_carbon_sum(metric, total)
        else:
            # The final flush could not ship everything: the spool carries it to the next start.
            self.restart_agent_with_config()
            self.assert_carbon_sums(sums)

    def restart_agent_with_config(self):
        old = self.agent
        self.agent = harness.StatherdAgent(self.workdir, self.server.url, self.token_file, [],
                                           host=HOST, spool_dir=old.spool_dir,
                                           extra_args=["--config", self.config_path])
        self.managed.append(self.agent)
        self.agent.start()

    def test_second_sigterm_exits_at_once_and_status_rejects_bad_config(self):
        """A server that accepts connections and never answers keeps the drain busy shipping;
        a second SIGTERM must end the agent at once, with its batches left in the spool."""
        self.token_file = harness.write_token_file(self.workdir)
        self.write_sentinel()
        self.write_config((OLD_APP,))
        blackhole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(blackhole.close)
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)  # never accepted: connects succeed, requests hang until timeout
        url = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
        self.agent = harness.StatherdAgent(self.workdir, url, self.token_file, [], host=HOST,
                                           extra_args=["--config", self.config_path])
        self.managed.append(self.agent)
        self.agent.start()
        spooled = lambda: [n for n in os.listdir(self.agent.spool_dir) if n.endswith(".batch")]
        harness.wait_for(spooled, 30, what="a spooled batch")
        self.assertEqual(self.status()[0], 0)

        os.kill(self.agent.process.pid, signal.SIGTERM)
        harness.wait_for(lambda: "SIGTERM: stopping" in self.agent_log(), 30, interval=0.05,
                         what="the agent's first SIGTERM")
        os.kill(self.agent.process.pid, signal.SIGTERM)
        code = self.agent.process.wait(timeout=30)
        self.assertIn("SIGTERM again: exiting now", self.agent_log())
        self.assertEqual(code, 1)
        self.assertTrue(spooled(), "the unsent batches must stay in the spool")

        code, out, err = self.status("--config", os.path.join(self.workdir, "missing.yaml"))
        self.assertEqual(code, 2, out + err)


if __name__ == "__main__":
    unittest.main()
