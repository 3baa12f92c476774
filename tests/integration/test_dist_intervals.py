"""Per-interval distributions from cumulative sources (issue #14), end to end with real writer
processes: three Histogram writers observe 1 ms, then 100 ms, in
steps the test drives (200 observations per writer per step; the next step starts once the
server holds the previous one). A writer is replaced by a new process mid-run. Each test runs
with statherd v2 writers (clients/python), prometheus_client multiprocess .db files and
Prometheus text endpoints (prometheus_client's HTTP server; bucket bounds fine around the two
values, so the interpolated quantiles are close). Checks:
- every interval's `count` is the observations that arrived in it: the counts of all intervals
  sum to exactly the observations made (in the JSON API and in Carbon, which sums `count`);
- after the shift, every following interval's app-level p50 and p99 are 0.1 within 2.5 %;
- the restarted worker neither drops nor doubles its observations.
Also (issue #9 item 1): a server that has seen v2 histograms restarts cleanly (SIGTERM, same
--state-dir) and continues counting only new observations.
"""

import os
import signal
import subprocess
import sys
import unittest

import harness
import pipeline
from test_prometheus_restarts import ScrapingReceiver
from test_prometheus_scrape import ensure_prometheus, prom_name

APP = "distiv"
METRIC = "lat"
PER_STEP = 200

WRITER = r"""
import os, sys
mode = sys.argv[2]
BOUNDS = (0.00099, 0.001, 0.0999, 0.1, 1.0)  # fine around the two values: interpolation is close
if len(sys.argv) > 4:  # a release that adds a bucket bound
    BOUNDS = tuple(sorted(BOUNDS + (float(sys.argv[4]),)))
if mode == "v2":
    sys.path.insert(0, os.path.join(sys.argv[1], "clients", "python"))
    import statherd
    h = statherd.Histogram("lat")
else:  # prometheus_client: multiprocess .db files, or a text endpoint on port argv[3]
    import prometheus_client as pc
    h = pc.Histogram("lat", "latency", buckets=BOUNDS)
    if mode == "text":
        pc.start_http_server(int(sys.argv[3]), addr="127.0.0.1")
print("ready", flush=True)
for line in sys.stdin:
    value, n = line.split()
    for _ in range(int(n)):
        h.observe(float(value))
    print("ok", flush=True)
"""


class DistIntervalsTest(pipeline.PipelineTestCase):
    MODE = "v2"

    def setUp(self):
        super().setUp()
        self.script = os.path.join(self.workdir, "hist_writer.py")
        with open(self.script, "w") as f:
            f.write(WRITER)
        self.observed = 0

    def start(self, with_carbon=True, port=None, server_args=()):
        self.token_file = harness.write_token_file(self.workdir)
        if with_carbon:
            self.start_carbon()
        self.start_server(port=port, extra_args=server_args)
        self.prom_dir = os.path.join(self.workdir, "prom")
        os.makedirs(self.prom_dir)  # empty at the first scan: its files then count whole
        self.ports = [harness.free_port() for _ in range(3)]
        source_args = {
            "v2": ["--v2-glob", os.path.join(self.stats_dir, "*.statherd")],
            "multiproc": ["--prom-multiproc-dir", f"{APP}={self.prom_dir}"],
            "text": [a for p in self.ports
                     for a in ("--prometheus-url", f"{APP}=http://127.0.0.1:{p}/metrics")],
        }[self.MODE]
        self.agent = harness.StatherdAgent(
            self.workdir, self.server.url, self.token_file,
            [os.path.join(self.workdir, "none-*.mmstats")], host=pipeline.HOST,
            extra_args=source_args)
        self.managed.append(self.agent)
        self.agent.start()
        self.wait_agent_batches(2)

    def wait_agent_batches(self, more):
        def seq():
            return (self.server.get_json("/api/v1/sources")["agents"] or [{}])[0].get("last_seq", 0)
        start = seq()
        harness.wait_for(lambda: seq() >= start + more, 60, interval=0.1,
                         what=f"{more} more agent batches")

    def start_writer(self, index, extra_bound=None):
        env = dict(os.environ, STATHERD_DIR=self.stats_dir, STATHERD_APP=APP,
                   PROMETHEUS_MULTIPROC_DIR=self.prom_dir)
        argv = [harness.PYTHON, self.script, harness.SOURCE_DIR, self.MODE, str(self.ports[index])]
        if extra_bound is not None:
            argv.append(str(extra_bound))
        proc = subprocess.Popen(argv, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (proc.kill(), proc.wait()))
        self.assertEqual(proc.stdout.readline().strip(), "ready")
        return proc

    def step(self, writers, value):
        for w in writers:
            if w.poll() is not None:  # said plainly, not as a BrokenPipeError
                self.fail(f"writer pid {w.pid} exited with {w.returncode} (its stderr is above)")
            w.stdin.write(f"{value} {PER_STEP}\n")
            w.stdin.flush()
        for w in writers:
            self.assertEqual(w.stdout.readline().strip(), "ok")
        self.observed += PER_STEP * len(writers)
        harness.wait_for(lambda: self.api_total() == self.observed, 30, interval=0.05,
                         what=f"the server's interval counts to sum to {self.observed}")

    def series(self):
        """{stat: {ts: value}} of the app-level distribution from the JSON API."""
        out = {}
        for s in self.server.render(f"statherd.{APP}.{METRIC}.*"):
            stat = s["target"].rsplit(".", 1)[1]
            out[stat] = {ts: v for v, ts in s["datapoints"] if v is not None}
        return out

    def api_total(self):
        return sum(self.series().get("count", {}).values())

    def test_intervals_hold_their_own_observations_after_a_latency_shift(self):
        self.start()
        writers = [self.start_writer(i) for i in range(3)]
        if self.MODE == "text":  # an HTTP source is baselined at first sight: let it see 0
            self.wait_agent_batches(3)
        for _ in range(5):
            self.step(writers, 0.001)
        before_shift = max(self.series()["count"])
        for k in range(6):
            if k == 3:  # a recycled worker: the old one exits, a new process takes over
                old = writers.pop(0)
                old.stdin.close()
                old.wait(timeout=60)
                writers.append(self.start_writer(0))  # text: same port, its count restarts
            self.step(writers, 0.1)
        self.wait_more_intervals_api(2)
        s = self.series()
        counts = dict(sorted(s["count"].items()))
        print(f"\ncount per interval: {[counts[t] for t in counts]}", file=sys.stderr)
        after = {t: (s["p50"].get(t), s["p99"].get(t)) for t in counts if t > before_shift and counts[t] > 0}
        print(f"p50/p99 per interval after the shift: {list(after.values())}", file=sys.stderr)
        self.assertEqual(sum(counts.values()), self.observed)
        self.assertTrue(all(c <= 2 * 3 * PER_STEP for c in counts.values()), counts)
        self.assertGreaterEqual(len(after), 2)
        tolerance = 0.025 if self.MODE == "v2" else 0.0025  # buckets: (0.0999, 0.1]
        for t, (p50, p99) in list(after.items())[1:]:
            self.assertAlmostEqual(p50, 0.1, delta=0.1 * tolerance, msg=f"p50 at {t}")
            self.assertAlmostEqual(p99, 0.1, delta=0.1 * tolerance, msg=f"p99 at {t}")
        self.wait_carbon_sum(f"statherd.{APP}.{METRIC}.count", self.observed)

    def test_server_restart_after_histograms_continues(self):
        self.start(with_carbon=False)
        writers = [self.start_writer(0)]
        if self.MODE == "text":
            self.wait_agent_batches(3)
        for _ in range(3):
            self.step(writers, 0.002)
        self.server.stop()
        self.assertEqual(self.server.process.returncode, 0)
        self.restart_server()  # the new server's history starts empty: count what follows
        self.observed = 0
        self.step(writers, 0.05)
        self.step(writers, 0.05)
        s = self.series()
        self.assertEqual(self.api_total(), self.observed, s["count"])
        if self.MODE == "v2":
            last = max(t for t, c in s["count"].items() if c > 0)
            self.assertAlmostEqual(s["p50"][last], 0.05, delta=0.05 * 0.025)

    def test_prometheus_gets_fleet_totals_and_the_last_intervals_quantiles(self):
        """Prometheus scrapes /metrics and receives remote_write: `_count` and `_sum` are fleet
        totals of the observations (a worker recycled mid-run neither drops nor doubles its
        share, no reset), the quantiles those of the last interval (0.1 after the shift)."""
        ensure_prometheus()
        port = harness.free_port()
        self.prom = ScrapingReceiver(self.workdir, f"127.0.0.1:{port}")
        self.managed.append(self.prom)
        self.prom.wait_ready()
        self.start(with_carbon=False, port=port,
                   server_args=["--remote-write", f"{self.prom.url}/api/v1/write"])
        writers = [self.start_writer(i) for i in range(3)]
        if self.MODE == "text":
            self.wait_agent_batches(3)
        observed_sum = 0.0
        for k, value in enumerate([0.001] * 3 + [0.1] * 4):
            if k == 5:  # a recycled worker
                old = writers.pop(0)
                old.stdin.close()
                old.wait(timeout=60)
                writers.append(self.start_writer(0))
            self.step(writers, value)
            observed_sum += value * PER_STEP * len(writers)
        family = prom_name(METRIC, "")[:-1]  # statherd_lat: a summary
        copies = {"remote_write": f'{{job="",app="{APP}",level="app"}}',
                  "scrape": f'{{job="statherd",app="{APP}",level="app"}}'}

        def figures():
            return {what: {"count": self.prom.query_one(f"{family}_count{sel}"),
                           "sum": self.prom.query_one(f"{family}_sum{sel}"),
                           "resets": self.prom.query_one(f"resets({family}_count{sel}[1h])"),
                           # an interval without observations has no quantiles (the scraped
                           # series go stale): the last value the interval before the idle ones
                           "p50": self.prom.query_one(
                               f'last_over_time({family}{sel[:-1]},quantile="0.5"}}[5m])')}
                    for what, sel in copies.items()}
        # Every figure is read in one pass that the wait keeps (a query that fails or finds no
        # series gives None and the wait goes on; a CI run once errored on a None here).
        last = {}

        def complete():
            fresh = figures()  # may raise (a query timed out): the last complete pass stays
            last.clear()
            last.update(fresh)
            return all(f["count"] == self.observed and None not in f.values()
                       for f in last.values())
        waited = ""
        try:
            harness.wait_for(complete, 60, interval=0.5,
                             what=f"both copies' _count == {self.observed}, every figure there")
        except harness.WaitTimeout as exc:
            waited = f"; {exc}"  # with the last error, if a query raised
        got = dict(last)
        report = f"observed {self.observed} (sum {observed_sum:.3f}); Prometheus {got}{waited}"
        print(f"\n{report}", file=sys.stderr)
        self.assertEqual(set(got), set(copies), report)
        for what, f in got.items():
            self.assertNotIn(None, f.values(), f"{what}: a query found no single series: {report}")
            self.assertEqual(f["count"], self.observed, f"{what}: {report}")
            self.assertAlmostEqual(f["sum"], observed_sum, delta=observed_sum * 1e-6,
                                   msg=f"{what}: {report}")
            self.assertEqual(f["resets"], 0, f"{what}: {report}")
            tolerance = 0.025 if self.MODE == "v2" else 0.0025
            self.assertAlmostEqual(f["p50"], 0.1, delta=0.1 * tolerance, msg=f"{what}: {report}")

    def wait_more_intervals_api(self, n):
        start = max(self.series().get("count", {0: 0}))
        harness.wait_for(lambda: max(self.series().get("count", {0: 0})) >= start + n, 30,
                         interval=0.1, what=f"{n} more intervals")


class PromMultiprocIntervalsTest(DistIntervalsTest):
    MODE = "multiproc"
    test_server_restart_after_histograms_continues = None  # the v2 run covers the restart

    def test_a_worker_with_one_more_bucket_bound_adds_only_its_observations(self):
        """A rolling deploy: a new worker's histogram has one more bound than the running
        ones'. The directory's histogram (the union of the bounds) grows a bucket; the interval
        counts only what was observed in it, not every observation of the directory again."""
        self.start(with_carbon=False)
        writers = [self.start_writer(i) for i in range(2)]
        for _ in range(3):
            self.step(writers, 0.001)
        writers.append(self.start_writer(2, extra_bound=0.25))
        for _ in range(3):
            self.step(writers, 0.2)  # step() checks the intervals' counts sum to the observed
        s = self.series()
        self.assertEqual(self.api_total(), self.observed, s["count"])
        last = max(t for t, c in s["count"].items() if c > 0)
        # The old workers' 0.2 s fall in their (0.1, 1] bucket: the interval's p50 lies there (the
        # directory's lifetime p50 would still be 0.001).
        self.assertTrue(0.1 < s["p50"][last] <= 1.0, s["p50"])


class PromTextIntervalsTest(DistIntervalsTest):
    MODE = "text"
    test_server_restart_after_histograms_continues = None

    def test_a_restart_that_counts_past_the_old_total_between_two_reads(self):
        """The endpoint's process restarts and observes more than the old process did before the
        agent reads it again (the agent is held with SIGSTOP meanwhile): the counts alone look
        like growth; process_start_time_seconds says it is a new process, whose every
        observation counts."""
        self.start(with_carbon=False)
        writers = [self.start_writer(0)]
        self.wait_agent_batches(3)
        self.step(writers, 0.001)
        agent_pid = self.agent.process.pid
        os.kill(agent_pid, signal.SIGSTOP)
        try:
            old = writers.pop(0)
            old.stdin.close()
            old.wait(timeout=60)
            new = self.start_writer(0)
            writers.append(new)
            new.stdin.write(f"0.001 {3 * PER_STEP}\n")  # past the old counts in every bucket
            new.stdin.flush()
            self.assertEqual(new.stdout.readline().strip(), "ok")
            self.observed += 3 * PER_STEP
        finally:
            os.kill(agent_pid, signal.SIGCONT)
        harness.wait_for(lambda: self.api_total() == self.observed, 30, interval=0.1,
                         what=f"the interval counts to sum to {self.observed} (the restarted "
                              f"process counted whole)")
        self.step(writers, 0.1)  # and it goes on counting only what is new
        self.assertEqual(self.api_total(), self.observed)


if __name__ == "__main__":
    unittest.main()
