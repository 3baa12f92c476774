"""SIGKILL statherd-agent while writers keep counting; restart it on the same spool dir.
Every increment must reach Carbon exactly once: the server already knows each writer process
(pid + start time), so the restarted agent's first cumulative values yield the missed deltas,
and batches the killed agent left in its spool are replayed without double counting."""

import unittest

import harness
from pipeline import HOST, PipelineTestCase, sum_by_app

APP = "killagent"


class AgentKillTest(PipelineTestCase):
    counter_patterns = ("*.count",)

    def test_every_increment_counted_once_across_agent_sigkill(self):
        self.start_pipeline()
        writers = self.start_writers([(APP, 0), (APP, 1)], counters=2, rate=50, duration=20)
        first = f"statherd.{APP}.counter0.count.count"
        harness.wait_for(lambda: self.carbon.sum(first) > 0, 30, interval=0.2,
                         what=f"{first} flowing into carbon before the kill")

        self.agent.kill()
        # Writers add 2 x (1 + 2) = 6 per round at 50 rounds/s: 1200 is about 4 intervals of 1 s.
        self.wait_progress(writers, increments=1200)
        self.assertTrue(all(w.process.running() for w in writers),
                        "writers finished while the agent was down; raise --duration")
        self.restart_agent()

        for w in writers:
            w.wait_done(timeout=60)
        expected = sum_by_app(writers)[APP]
        self.assertEqual(len(expected), 2)
        sums = {}
        for name, total in expected.items():
            sums[f"statherd.{APP}.{name}.count"] = total
            sums[f"statherd.{APP}.hosts.{HOST}.{name}.count"] = total
        self.assert_carbon_sums(sums)
        self.assertTrue(self.server.healthy())

    def test_spooled_batches_survive_agent_sigkill_while_server_is_down(self):
        """Server down -> the agent spools; agent SIGKILLed and restarted on the same spool dir;
        then the server comes back: still every increment exactly once."""
        self.start_pipeline()
        writers = self.start_writers([(APP, 0), (APP, 1)], counters=2, rate=50, duration=25)
        first = f"statherd.{APP}.counter0.count.count"
        harness.wait_for(lambda: self.carbon.sum(first) > 0, 30, interval=0.2,
                         what=f"{first} flowing into carbon before the outage")

        self.server.kill()
        self.wait_progress(writers, increments=900)
        self.agent.kill()
        self.wait_progress(writers, increments=600)
        self.restart_agent()
        self.wait_progress(writers, increments=600)
        self.assertTrue(all(w.process.running() for w in writers),
                        "writers finished during the outage; raise --duration")
        self.restart_server()

        for w in writers:
            w.wait_done(timeout=60)
        expected = sum_by_app(writers)[APP]
        sums = {}
        for name, total in expected.items():
            sums[f"statherd.{APP}.{name}.count"] = total
            sums[f"statherd.{APP}.hosts.{HOST}.{name}.count"] = total
        self.assert_carbon_sums(sums)


if __name__ == "__main__":
    unittest.main()
