"""End to end: several Python processes write statherd v2 histograms (clients/python/statherd),
statherd-agent reads them (--v2-glob), statherd-server merges their sketches per interval; the
app-level count/sum/min/max are exact and p50/p90/p99 are within the sketch's 1 % guarantee of
the exact quantiles of every value written by every process.

Quantile definition (the sketch's, common/sketch.cpp): the value at 0-based rank
floor(q * (n - 1)) of all n values sorted.

Synchronisation: the server rolls up each interval's new observations (issue #14), so all
values must reach it in one interval. Each writer observes all its values in a staging
directory, writes them to a JSON file (the ready signal) and stays alive; the test then renames
the staging directory to the one the agent watches (one atomic step), so the agent first sees
every file complete, in one scan, as new files (counted whole). The test waits for the interval
whose count equals the total number of values and checks that interval's stats.
"""

import json
import math
import os
import sys
import unittest

import harness
import pipeline

APP = "v2pct"
METRIC = "request_seconds"

WRITER = r'''
import json, os, random, signal, sys
sys.path.insert(0, os.path.join(sys.argv[1], "clients", "python"))
import statherd

index, count, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(1000 + index)
draw = [
    lambda: rng.expovariate(1 / 0.05),           # latency-like
    lambda: rng.lognormvariate(-2.0, 1.0),       # long tail
    lambda: rng.uniform(1.0, 100.0),             # flat
    lambda: rng.paretovariate(1.5) * 0.01,       # heavy tail
][index % 4]
histogram = statherd.Histogram(METRIC)
values = [draw() for _ in range(count)]
for v in values:
    histogram.observe(v)
with open(out + ".tmp", "w") as f:
    json.dump({"pid": os.getpid(), "path": statherd.stat_file_path(), "values": values}, f)
os.rename(out + ".tmp", out)
signal.pause()  # stay alive: the file (and its full sketch) stays current until we are killed
'''.replace("METRIC", repr(METRIC))


def exact_quantile(sorted_values, q):
    return sorted_values[int(math.floor(q * (len(sorted_values) - 1)))]


class V2PercentilesTest(pipeline.PipelineTestCase):
    PROCESSES = 6
    VALUES_PER_PROCESS = (3000, 5000, 7000, 4000, 6000, 2000)

    def start_v2_pipeline(self):
        self.staging_dir = os.path.join(self.workdir, "v2-staging")
        self.live_dir = os.path.join(self.workdir, "v2-live")
        os.makedirs(self.staging_dir)
        self.token_file = harness.write_token_file(self.workdir)
        self.start_server()
        self.agent = harness.StatherdAgent(
            self.workdir, self.server.url, self.token_file,
            [os.path.join(self.workdir, "no-mmstats-here-*.mmstats")], host=pipeline.HOST,
            extra_args=["--v2-glob", os.path.join(self.live_dir, "*.statherd")])
        self.managed.append(self.agent)
        self.agent.start()

    def start_v2_writers(self):
        script = os.path.join(self.workdir, "v2_writer.py")
        with open(script, "w") as f:
            f.write(WRITER)
        outputs = []
        for i in range(self.PROCESSES):
            out = os.path.join(self.workdir, f"v2-writer-{i}.json")
            proc = harness.ManagedProcess(
                f"v2-writer-{i}",
                [harness.PYTHON, script, harness.SOURCE_DIR, str(i), str(self.VALUES_PER_PROCESS[i]), out],
                self.workdir, env={"STATHERD_DIR": self.staging_dir, "STATHERD_APP": APP})
            holder = type("Holder", (), {})()
            holder.process = proc
            self.managed.append(holder)
            outputs.append((proc, out))
        written = []
        for proc, out in outputs:
            def ready(proc=proc, out=out):
                if proc.poll() is not None:
                    raise AssertionError(f"{proc.name} exited with {proc.returncode}\n{proc.log_tail()}")
                return os.path.exists(out)
            harness.wait_for(ready, 60, what=f"{proc.name} values file")
            with open(out) as f:
                written.append(json.load(f))
        self.wait_agent_scans(2)  # files first seen after the agent's first scan are new
        os.rename(self.staging_dir, self.live_dir)
        return written

    def wait_agent_scans(self, batches):
        def scanned():
            agents = self.server.get_json("/api/v1/sources")["agents"]
            return agents and agents[0]["last_seq"] >= batches
        harness.wait_for(scanned, 60, interval=0.1, what=f"{batches} batches of the agent")

    def wait_full_interval(self, total):
        """{stat: value} of the first interval whose app-level count is `total`."""
        target = f"statherd.{APP}.{METRIC}.*"

        def full_interval():
            series = {s["target"].rsplit(".", 1)[1]: s["datapoints"] for s in self.server.render(target)}
            for value, ts in series.get("count", []):
                if value == total:
                    return {stat: v for stat, points in series.items()
                            for v, t in points if t == ts}
            return None
        return harness.wait_for(full_interval, 90, interval=0.2,
                                what=f"an interval of {target} with count {total}")

    def test_merged_percentiles_are_within_one_percent_of_exact(self):
        self.start_v2_pipeline()
        written = self.start_v2_writers()
        self.assertEqual(len({w["pid"] for w in written}), self.PROCESSES)
        values = sorted(v for w in written for v in w["values"])
        total = len(values)
        self.assertEqual(total, sum(self.VALUES_PER_PROCESS))
        stats = self.wait_full_interval(total)

        self.assertEqual(stats["count"], total)
        self.assertEqual(stats["min"], values[0])
        self.assertEqual(stats["max"], values[-1])
        exact_sum = math.fsum(values)
        self.assertLessEqual(abs(stats["sum"] - exact_sum), 1e-9 * exact_sum, (stats["sum"], exact_sum))
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            exact = exact_quantile(values, q)
            got = stats[name]
            self.assertLessEqual(abs(got - exact), 0.01 * exact + 1e-12,
                                 f"{name}: server {got} vs exact {exact} "
                                 f"(relative error {abs(got - exact) / exact:.4%})")


if __name__ == "__main__":
    unittest.main()
