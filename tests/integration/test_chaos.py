"""Chaos: every increment a Python process counted reaches Carbon exactly once, whatever crashes
or misbehaves in between (issue #9, "Done means").

For STATHERD_CHAOS_SECONDS (default 60; `make chaos`: 600) recycled writer processes (mmstats v1
and statherd v2) count, while the driver SIGKILLs and SIGTERMs the server and the agent at
random (STATHERD_CHAOS_KILLS of each of the four, default max(4, 20 per 10 minutes)) and
restarts them on the same --state-dir / --spool-dir; a proxy between agent and server answers
5xx, resets connections mid-request and mid-response and delays; the agent's spool tmpfs is
filled once. Then the writers stop, everything drains, and Carbon's app-level `count` sums must
equal the writers' exact totals. To isolate a cause: STATHERD_CHAOS_TARGETS=server (or agent)
kills only that daemon, STATHERD_CHAOS_SPOOL_FULL=0 skips the spool-full episode.
The seed (STATHERD_CHAOS_SEED) is printed; the summary table
and a per-writer diagnosis are printed at the end and kept in <workdir>/chaos-summary.txt.
Needs root (tmpfs mount); skipped otherwise.
"""

import os
import unittest

import chaos_report
import harness
from chaos_driver import Chaos, ChaosConfig
from chaos_spool_fs import can_mount
from pipeline import PipelineTestCase


class ChaosTest(PipelineTestCase):
    def test_every_increment_reaches_carbon_exactly_once_under_chaos(self):
        if not can_mount():
            self.skipTest("the chaos test mounts a tmpfs for the agent's spool: run it as root")
        cfg = ChaosConfig.from_env()
        print(f"\nchaos: seed {cfg.seed} (STATHERD_CHAOS_SEED), {cfg.seconds:g} s, "
              f"{cfg.kills_per_kind} of each kill kind, workdir {self.workdir}", flush=True)
        chaos = Chaos(self, cfg)
        chaos.setup()
        chaos.run()
        drain = chaos.drain()

        expected = chaos.writers.expected()
        rows = self.settled_totals(chaos, expected)
        self.wait_more_intervals(3)
        later = chaos_report.app_totals(self.carbon, expected)
        stable = later == rows
        rows = later

        summary = chaos_report.format_summary(chaos, rows, stable, drain)
        sources = self.server.get_json("/api/v1/sources").get("sources", [])
        diagnosis = chaos_report.format_diagnosis(
            chaos, chaos_report.writer_discrepancies(self.carbon, chaos.writers.workers),
            chaos_report.evidence(self.workdir), sources)
        with open(os.path.join(self.workdir, "chaos-summary.txt"), "w") as f:
            f.write(summary + "\n" + diagnosis + "\n")
        chaos_report.write_files(chaos, self.workdir)
        print(summary + "\n" + diagnosis, flush=True)

        self.assertEqual(chaos.writers.errors(), [], "a writer failed to count or report")
        for kind, count in chaos.signals.items():
            self.assertGreaterEqual(count, cfg.kills_per_kind, f"fewer {kind} than scheduled")
        self.assertEqual(chaos.fs.episodes, 1 if cfg.spool_full else 0)
        written = sum(r[2] for r in rows)
        self.assertGreater(written, 0)
        self.assertEqual(sum(r[3] for r in rows), written,
                         f"Carbon's app-level totals differ from the increments written{summary}")
        self.assertTrue(stable, "Carbon's totals changed after they had settled (double count)")

    def settled_totals(self, chaos, expected, timeout=10):
        """Carbon's totals once they equal the writers' (re-emitted intervals may still be in
        flight after the drain), or as they are after `timeout`."""
        def equal():
            rows = chaos_report.app_totals(self.carbon, expected)
            return all(abs(got - total) < 1e-6 for _, _, total, got in rows)
        try:
            harness.wait_for(equal, timeout, interval=0.5, what="Carbon totals == written")
        except harness.WaitTimeout:
            pass
        return chaos_report.app_totals(self.carbon, expected)


if __name__ == "__main__":
    unittest.main()
