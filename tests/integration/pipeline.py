"""The end-to-end pipeline as a unittest base class: carbon-cache + statherd-server +
statherd-agent + Python mmstats writers, all real processes on loopback.

Counter semantics the tests rely on: a writer that starts after the agent's first scan is
"fresh" and every increment counts, so start_pipeline() waits for the agent's first shipped
batch (a static sentinel file's gauge reaching the server) before any writer starts.
"""

import json
import os
import shutil
import sys
import tempfile
import unittest

import carbon_fixture
import harness
import mmstats_v1

HOST = "itest-host"
SENTINEL_APP = "sentinel"


class Writer:
    """clients/python/mmstats_writer.py: counts at a known pace, writes exact totals on exit."""

    def __init__(self, workdir, stats_dir, app, index, counters=3, rate=200, duration=6.0):
        self.app = app
        self.name = f"writer-{app}-{index}"
        self.ready_file = os.path.join(workdir, f"{self.name}.ready")
        self.totals_file = os.path.join(workdir, f"{self.name}.totals.json")
        argv = [harness.PYTHON, harness.WRITER_SCRIPT, "--app", app, "--dir", stats_dir,
                "--counters", str(counters), "--rate", str(rate), "--duration", str(duration),
                "--ready-file", self.ready_file, "--totals", self.totals_file]
        self.process = harness.ManagedProcess(self.name, argv, workdir)

    def wait_ready(self, timeout=30):
        def ready():
            if self.process.poll() is not None and not os.path.exists(self.ready_file):
                raise AssertionError(f"{self.name} exited with {self.process.returncode}\n"
                                     f"{self.process.log_tail()}")
            return os.path.exists(self.ready_file)
        harness.wait_for(ready, timeout, what=f"{self.name} ready file")

    def wait_done(self, timeout):
        code = self.process.wait(timeout=timeout)
        if code != 0:
            raise AssertionError(f"{self.name} exited with {code}\n{self.process.log_tail()}")
        harness.wait_for(lambda: os.path.exists(self.totals_file), 10,
                         what=f"{self.name} totals file")

    def totals_json(self):
        """The writer's whole totals file: {"app", "pid", "path", "rounds", "counters", "gauges"}."""
        with open(self.totals_file) as f:
            return json.load(f)

    def totals(self):
        """{counter label: exact final value}."""
        data = self.totals_json()
        if isinstance(data, dict) and isinstance(data.get("counters"), dict):
            data = data["counters"]
        return {k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def sum_by_app(writers):
    """{app: {counter: total over that app's writers}}."""
    result = {}
    for w in writers:
        per_app = result.setdefault(w.app, {})
        for name, value in w.totals().items():
            per_app[name] = per_app.get(name, 0) + value
    return result


def count_sums(writers, app):
    """{whisper metric: expected sum} of every counter of app's writers, at app and host level
    (the per-interval counts in Carbon must add up to the writers' exact totals)."""
    sums = {}
    for name, total in sum_by_app(writers)[app].items():
        sums[f"statherd.{app}.{name}.count"] = total
        sums[f"statherd.{app}.hosts.{HOST}.{name}.count"] = total
    return sums


class PipelineTestCase(unittest.TestCase):
    """Owns a temp dir and every process a test starts; prints their logs when a test fails."""

    counter_patterns = ()  # () = the agent's documented defaults

    def setUp(self):
        for name in ("statherd-agent", "statherd-server"):
            path = harness.binary(name)
            if not os.access(path, os.X_OK):
                self.fail(f"{path} not found; set STATHERD_BIN_DIR to the cmake build dir")
        self.workdir = tempfile.mkdtemp(prefix=f"statherd-{self._testMethodName}-")
        self.stats_dir = os.path.join(self.workdir, "stats")
        os.makedirs(self.stats_dir)
        self.managed = []  # objects with .process; stopped in reverse order
        self.carbon = self.server = self.agent = None
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        failed = harness.test_has_failed(self)
        for thing in reversed(self.managed):
            proc = getattr(thing, "process", None)
            if proc is not None:
                try:
                    proc.stop(timeout=10)
                except Exception as exc:  # noqa: BLE001 - keep stopping the others
                    print(f"stopping {proc.name}: {exc!r}", file=sys.stderr)
        killed = [t.process.name for t in self.managed
                  if getattr(getattr(t, "process", None), "killed_at_stop", False)]
        if killed and not failed:  # a stop that needed SIGKILL: its logs say which step hung
            print(f"\n===== {', '.join(killed)} needed SIGKILL to stop: logs kept "
                  f"(dir {self.workdir}) =====", file=sys.stderr)
            for thing in self.managed:
                proc = getattr(thing, "process", None)
                if proc is not None and getattr(proc, "killed_at_stop", False):
                    print(f"----- {proc.name} -----\n{proc.log_tail(3000)}", file=sys.stderr)
        if failed:
            print(f"\n===== logs of failed test {self.id()} (dir {self.workdir}) =====", file=sys.stderr)
            # The failure first: a CI summary that keeps only the head and tail of a long output
            # would otherwise cut it (it is printed again after the logs by unittest).
            print(harness.failure_text(self), file=sys.stderr)
            seen = set()
            for thing in self.managed:
                proc = getattr(thing, "process", None)
                if proc is not None and proc.stderr_path not in seen:
                    seen.add(proc.stderr_path)
                    print(f"----- {proc.name} -----\n{proc.log_tail()}", file=sys.stderr)
        if not failed and not killed and not os.environ.get("STATHERD_KEEP_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- starting things ------------------------------------------------------------------

    def start_carbon(self):
        self.carbon = carbon_fixture.CarbonCache(self.workdir)
        self.managed.append(self.carbon)
        self.carbon.start()
        return self.carbon

    def start_server(self, port=None, graphite=None, extra_args=()):
        graphite = graphite or (self.carbon.address if self.carbon else "-")
        self.server = harness.StatherdServer(self.workdir, self.token_file, graphite=graphite,
                                             port=port, extra_args=extra_args)
        self.managed.append(self.server)
        self.server.start()
        return self.server

    def restart_server(self):
        """A new statherd-server on the same port and state dir as the current one."""
        old = self.server
        self.server = harness.StatherdServer(self.workdir, old.token_file, graphite=old.graphite,
                                             port=old.port, state_dir=old.state_dir)
        self.managed.append(self.server)
        self.server.start()
        return self.server

    def start_agent(self, spool_dir=None):
        self.agent = harness.StatherdAgent(self.workdir, self.server.url, self.token_file,
                                           [os.path.join(self.stats_dir, "*.mmstats")],
                                           counter_patterns=self.counter_patterns, host=HOST,
                                           spool_dir=spool_dir)
        self.managed.append(self.agent)
        self.agent.start()
        return self.agent

    def restart_agent(self):
        old = self.agent
        return self.start_agent(spool_dir=old.spool_dir)

    def write_sentinel(self):
        """A static mmstats file owned by this (live) test process: one gauge, value 1."""
        pid = os.getpid()
        path = os.path.join(self.stats_dir, f"{SENTINEL_APP}-{pid}-{pid}.mmstats")
        mmstats_v1.write_file(path, [("up", "Q", 1, True)])
        return path

    def wait_first_batch(self, timeout=30):
        """Waits until the agent has scanned and its batch reached the server."""
        def arrived():
            if not self.agent.process.running():
                raise AssertionError(f"statherd-agent exited with {self.agent.process.returncode}\n"
                                     f"{self.agent.process.log_tail()}")
            return bool(self.server.find(f"statherd.{SENTINEL_APP}.*"))
        harness.wait_for(arrived, timeout, interval=0.1,
                         what="the agent's first batch (sentinel series in /metrics/find)")

    def start_pipeline(self, with_carbon=True):
        self.token_file = harness.write_token_file(self.workdir)
        if with_carbon:
            self.start_carbon()
        self.start_server()
        self.write_sentinel()
        self.start_agent()
        self.wait_first_batch()

    def start_writers(self, specs, **kwargs):
        """specs: [(app, index)]; starts all, then waits for each ready file."""
        writers = []
        for app, index in specs:
            w = Writer(self.workdir, self.stats_dir, app, index, **kwargs)
            self.managed.append(w)
            writers.append(w)
        for w in writers:
            w.wait_ready()
        return writers

    # -- checking Carbon ------------------------------------------------------------------

    def wait_carbon_sum(self, metric, expected, timeout=60):
        """Waits until the whisper points of metric sum to expected; fails with the points."""
        try:
            harness.wait_for(lambda: abs(self.carbon.sum(metric) - expected) < 1e-6, timeout,
                             interval=0.2, what=f"sum of {metric} == {expected}")
        except harness.WaitTimeout:
            points = self.carbon.fetch(metric)
            self.fail(f"whisper sum of {metric} is {sum(v for _, v in points)}, expected {expected}"
                      f" (writers' exact totals); {len(points)} points: {points[-40:]}")

    def wait_more_intervals(self, intervals=3, timeout=60):
        """Waits until Carbon holds `intervals` more emitted intervals of the sentinel gauge:
        everything in flight when this was called has had time to arrive (or to over-count)."""
        sentinel = f"statherd.{SENTINEL_APP}.up.max"
        harness.wait_for(lambda: self.carbon.fetch(sentinel), timeout, what=f"{sentinel} in carbon")
        last = self.carbon.fetch(sentinel)[-1][0]
        harness.wait_for(lambda: self.carbon.fetch(sentinel)[-1][0] >= last + intervals, timeout,
                         interval=0.2, what=f"{intervals} more intervals of {sentinel}")

    def assert_carbon_sums(self, expected, timeout=60):
        """expected: {metric: total}. Waits for each sum, lets more intervals pass, then checks
        again, so a late duplicate (double counting) is caught as well as a loss."""
        for metric, total in expected.items():
            self.wait_carbon_sum(metric, total, timeout=timeout)
        self.wait_more_intervals()
        for metric, total in expected.items():
            self.assertAlmostEqual(self.carbon.sum(metric), total, places=6,
                                   msg=f"{metric} changed after it had reached the total")

    def wait_progress(self, writers, increments, timeout=60):
        """Waits until the writers' counters (read from their files) advanced by `increments`
        in total since the call: the scenario's "keep counting for a while", measured in work."""
        def total():
            value = 0
            for path in os.listdir(self.stats_dir):
                if path.startswith(tuple(f"{w.app}-" for w in writers)):
                    try:
                        fields = mmstats_v1.read_file(os.path.join(self.stats_dir, path))
                    except (OSError, ValueError):
                        continue
                    value += sum(v for k, v in fields.items() if k.endswith(".count"))
            return value
        start = total()
        harness.wait_for(lambda: total() - start >= increments, timeout, interval=0.1,
                         what=f"writers to count {increments} more")
