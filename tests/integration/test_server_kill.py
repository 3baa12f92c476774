"""SIGKILL statherd-server while writers keep counting; restart it on the same state dir and port.
Every increment must reach Carbon exactly once (the agent spools/retries, the server's WAL
replays, and re-emitted intervals carry their full value)."""

import unittest

import harness
from pipeline import PipelineTestCase, count_sums

APP = "killsrv"


class ServerKillTest(PipelineTestCase):
    counter_patterns = ("*.count",)

    def test_every_increment_counted_once_across_server_sigkill(self):
        self.start_pipeline()
        writers = self.start_writers([(APP, 0), (APP, 1)], counters=2, rate=50, duration=20)
        first = f"statherd.{APP}.counter0.count.count"
        harness.wait_for(lambda: self.carbon.sum(first) > 0, 30, interval=0.2,
                         what=f"{first} flowing into carbon before the kill")

        self.server.kill()
        # Writers add 2 x (1 + 2) = 6 per round at 50 rounds/s: 1200 is about 4 intervals of 1 s.
        self.wait_progress(writers, increments=1200)
        self.assertTrue(all(w.process.running() for w in writers),
                        "writers finished while the server was down; raise --duration")
        self.restart_server()

        for w in writers:
            w.wait_done(timeout=60)
        sums = count_sums(writers, APP)
        self.assertEqual(len(sums), 4)  # 2 counters x (app, host)
        self.assert_carbon_sums(sums)
        self.assertTrue(self.server.healthy())


if __name__ == "__main__":
    unittest.main()
