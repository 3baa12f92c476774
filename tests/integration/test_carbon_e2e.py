"""mmstats writers -> statherd-agent -> statherd-server -> real carbon-cache, checked in whisper."""

import os
import shutil
import tempfile
import unittest

import harness
import mmstats_v1
from pipeline import HOST, PipelineTestCase, Writer, sum_by_app

COUNTER_PATTERN = "*.count"
GAUGE_APP = "gaugeapp"
GAUGE_VALUES = (3, 7, 11)  # queue.depth of three static files: min 3, max 11, sum 21, mean 7


def write_gauge_files(stats_dir):
    """Three static files owned by the (live) test process, one gauge each, distinct paths."""
    pid = os.getpid()
    for i, value in enumerate(GAUGE_VALUES):
        path = os.path.join(stats_dir, f"{GAUGE_APP}-{pid}-{900000 + i}.mmstats")
        mmstats_v1.write_file(path, [("queue.depth", "I", value, True)])


class CarbonEndToEndTest(PipelineTestCase):
    counter_patterns = (COUNTER_PATTERN,)

    def test_counts_rates_gauges_and_host_paths_reach_carbon(self):
        self.start_pipeline()
        write_gauge_files(self.stats_dir)
        writers = self.start_writers([("alpha", 0), ("alpha", 1), ("beta", 0)],
                                     counters=3, rate=50, duration=5)
        for w in writers:
            w.wait_done(timeout=60)
        expected = sum_by_app(writers)
        self.assertEqual(set(expected), {"alpha", "beta"})

        for app, counters in expected.items():
            self.assertEqual(len(counters), 3, counters)
            for name, total in counters.items():
                self.assertGreater(total, 0)
                app_path = f"statherd.{app}.{name}"
                host_path = f"statherd.{app}.hosts.{HOST}.{name}"
                self.wait_carbon_sum(f"{app_path}.count", total)
                self.wait_carbon_sum(f"{host_path}.count", total)
                # rate = count / 1 s interval, so the rates sum to the total as well ...
                self.wait_carbon_sum(f"{app_path}.rate", total)
                # ... and match point by point.
                counts = dict(self.carbon.fetch(f"{app_path}.count"))
                rates = dict(self.carbon.fetch(f"{app_path}.rate"))
                # The pipeline keeps emitting (zero counts) while the two files are read: an
                # interval that landed between the two reads is newer than the other's newest.
                newest = min(max(counts), max(rates))
                counts = {ts: v for ts, v in counts.items() if ts <= newest}
                rates = {ts: v for ts, v in rates.items() if ts <= newest}
                self.assertEqual(set(counts), set(rates))
                for ts, count in counts.items():
                    self.assertAlmostEqual(rates[ts], count / 1.0, places=6, msg=f"{app_path} at {ts}")
                for stat in ("m1_rate", "m5_rate", "m15_rate"):
                    harness.wait_for(lambda: self.carbon.fetch(f"{app_path}.{stat}"), 30,
                                     what=f"{app_path}.{stat} in carbon")
                    values = [v for _, v in self.carbon.fetch(f"{app_path}.{stat}")]
                    self.assertTrue(all(v >= 0 for v in values), values)
                    self.assertGreater(max(values), 0)

        self.assert_carbon_sums({f"statherd.{app}.{name}.count": total
                                 for app, counters in expected.items()
                                 for name, total in counters.items()})
        self.check_writer_gauges(writers)
        self.check_static_gauges()
        self.check_render(expected)
        self.check_find(expected)

    def check_writer_gauges(self, writers):
        """gauge0.value = rounds / 10 in each writer: min and max stay within what was written."""
        top = max(w.totals_json()["gauges"]["gauge0.value"] for w in writers if w.app == "alpha")
        base = "statherd.alpha.gauge0.value"
        for stat in ("min", "max", "mean", "sum", "p50", "p90", "p99"):
            harness.wait_for(lambda: self.carbon.fetch(f"{base}.{stat}"), 30,
                             what=f"{base}.{stat} in carbon")
        for stat in ("min", "max", "mean", "p50", "p90", "p99"):
            for ts, value in self.carbon.fetch(f"{base}.{stat}"):
                self.assertTrue(0 <= value <= top + 1e-9, f"{base}.{stat}={value} at {ts}, max {top}")
        harness.wait_for(lambda: max(v for _, v in self.carbon.fetch(f"{base}.max")) == top, 30,
                         what=f"{base}.max to reach the writers' final value {top}")

    def check_static_gauges(self):
        base = f"statherd.{GAUGE_APP}.queue.depth"
        want = {"min": 3, "max": 11, "sum": 21, "mean": 7}
        for stat, value in want.items():
            harness.wait_for(lambda: self.carbon.fetch(f"{base}.{stat}"), 30,
                             what=f"{base}.{stat} in carbon")
            last = self.carbon.fetch(f"{base}.{stat}")[-1][1]
            self.assertAlmostEqual(last, value, places=6, msg=f"{base}.{stat}")
        for ts, p50 in self.carbon.fetch(f"{base}.p50"):
            self.assertTrue(3 <= p50 <= 11, f"p50={p50} at {ts}")
        host = f"statherd.{GAUGE_APP}.hosts.{HOST}.queue.depth.max"
        harness.wait_for(lambda: self.carbon.fetch(host), 30, what=f"{host} in carbon")
        self.assertEqual(self.carbon.fetch(host)[-1][1], 11)

    def check_render(self, expected):
        """GET /render in Graphite's JSON shape: [{"target", "datapoints": [[value|null, ts]]}]."""
        for app, counters in expected.items():
            # "*" matches one path component; the writer's labels are "counterN.count".
            series = self.server.render(f"statherd.{app}.*.count.count")
            self.assertEqual(len(series), len(counters), [s["target"] for s in series])
            self.assertIsInstance(series, list)
            by_target = {s["target"]: s for s in series}
            for name, total in counters.items():
                target = f"statherd.{app}.{name}.count"
                self.assertIn(target, by_target)
                points = by_target[target]["datapoints"]
                for point in points:
                    self.assertEqual(len(point), 2, point)
                    self.assertTrue(point[0] is None or isinstance(point[0], (int, float)), point)
                    self.assertIsInstance(point[1], int, point)
                self.assertAlmostEqual(sum(p[0] for p in points if p[0] is not None), total, places=6)
                # The in-memory store and Carbon agree point by point.
                carbon_points = dict(self.carbon.fetch(target))
                for value, ts in points:
                    if value is not None and ts in carbon_points:
                        self.assertAlmostEqual(carbon_points[ts], value, places=6)

    def check_find(self, expected):
        """GET /metrics/find in Graphite's shape: [{"text","id","leaf","expandable","allowChildren"}]."""
        nodes = self.server.find("statherd.*")
        ids = {n["id"] for n in nodes}
        self.assertTrue({"statherd.alpha", "statherd.beta", f"statherd.{GAUGE_APP}"} <= ids, ids)
        for node in nodes:
            self.assertEqual(node["text"], node["id"].split(".")[-1])
            self.assertEqual(node["leaf"], 0, node)
            self.assertEqual(node["expandable"], 1, node)
            self.assertEqual(node["allowChildren"], 1, node)
        app_nodes = {n["id"] for n in self.server.find("statherd.alpha.*")}
        self.assertIn("statherd.alpha.hosts", app_nodes)
        for name in expected["alpha"]:
            self.assertIn(f"statherd.alpha.{name.split('.')[0]}", app_nodes)
        leaves = self.server.find("statherd.alpha.counter0.count.*")
        stats = {n["text"]: n for n in leaves}
        for stat in ("count", "rate", "m1_rate", "m5_rate", "m15_rate"):
            self.assertIn(stat, stats)
            self.assertEqual(stats[stat]["leaf"], 1)
            self.assertEqual(stats[stat]["expandable"], 0)


class AgentOnceTest(unittest.TestCase):
    """statherd-agent --once prints one JSON object per sample, counters as cumulative values."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="statherd-once-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def test_once_prints_file_values_as_json_lines(self):
        pid = os.getpid()
        path = os.path.join(self.dir, f"onceapp-{pid}-{pid}.mmstats")
        mmstats_v1.write_file(path, [
            ("requests.count", "Q", 123456789, True),
            ("errors.count", "Q", 7, True),
            ("queue.depth", "I", 42, True),
            ("latency.mean", "d", 0.25, True),
            ("flag", "?", True, False),
            ("version", "16s", b"1.2.3", False),
        ])
        code, samples, stderr = harness.run_agent_once([os.path.join(self.dir, "*.mmstats")],
                                                       counter_patterns=[COUNTER_PATTERN])
        self.assertEqual(code, 0, stderr)
        by_name = {s["name"]: s for s in samples}
        for s in samples:
            self.assertEqual(set(s), {"source", "app", "pid", "name", "kind", "value", "tags"}, s)
            self.assertEqual(s["app"], "onceapp")
            self.assertEqual(s["pid"], pid)
            self.assertEqual(s["source"], path)
            self.assertIsInstance(s["tags"], dict)
        self.assertEqual(by_name["requests.count"]["kind"], "counter")
        self.assertEqual(by_name["requests.count"]["value"], 123456789)
        self.assertEqual(by_name["errors.count"]["kind"], "counter")
        self.assertEqual(by_name["errors.count"]["value"], 7)
        self.assertEqual(by_name["queue.depth"]["kind"], "gauge")
        self.assertEqual(by_name["queue.depth"]["value"], 42)
        self.assertEqual(by_name["latency.mean"]["kind"], "gauge")
        self.assertAlmostEqual(by_name["latency.mean"]["value"], 0.25)
        self.assertEqual(by_name["version"]["kind"], "text")
        self.assertEqual(by_name["version"]["value"], "1.2.3")

    def test_once_reads_a_live_writer_file(self):
        """Counters printed by --once equal the values in a writer's file (read independently)."""
        workdir = self.dir
        writer = Writer(workdir, workdir, "oncewriter", 0, counters=3, rate=50, duration=0.5)
        self.addCleanup(writer.process.stop)
        writer.wait_ready()
        writer.wait_done(timeout=30)
        totals = writer.totals()
        code, samples, stderr = harness.run_agent_once([os.path.join(workdir, "*.mmstats")],
                                                       counter_patterns=[COUNTER_PATTERN])
        self.assertEqual(code, 0, stderr)
        counters = {s["name"]: s["value"] for s in samples if s["kind"] == "counter"}
        self.assertEqual(counters, totals)
        path = writer.totals_json()["path"]
        self.assertEqual({k: v for k, v in mmstats_v1.read_file(path).items() if k.endswith(".count")},
                         totals)


if __name__ == "__main__":
    unittest.main()
