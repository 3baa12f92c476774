"""prometheus_client multiprocess files: the agent's aggregation equals MultiProcessCollector's.

Several real processes write counters, gauges in every multiprocess mode, histograms and
summaries with Debian's prometheus_client into one PROMETHEUS_MULTIPROC_DIR; then
`statherd-agent --once --prom-multiproc-dir DIR` and prometheus_client's own
MultiProcessCollector read the same files, and every sample must match (after mapping the
agent's distributions back to _bucket/_count/_sum samples).
"""

import json
import math
import os
import shutil
import subprocess
import tempfile
import unittest

import harness

WRITER = r"""
import os, sys
from prometheus_client import Counter, Gauge, Histogram, Summary
k = int(sys.argv[1])
c = Counter('jobs', 'Jobs', ['queue'])
c.labels('fast').inc(k)
c.labels('slow "q"\n').inc(0.5 * k)
Counter('plain', 'no labels').inc(100 + k)
for mode in ['all', 'liveall', 'min', 'livemin', 'max', 'livemax', 'sum', 'livesum']:
    Gauge('temp_' + mode, 'gauge ' + mode, ['zone'], multiprocess_mode=mode).labels('z1').set(k * 1.5 - 3)
h = Histogram('latency_seconds', 'latency', ['route'], buckets=[0.01, 0.1, 1, 10])
for i in range(20):
    h.labels('/a').observe((i * k) / 17.0)
h.labels('/b').observe(k)
s = Summary('payload_bytes', 'payload')
for i in range(k):
    s.observe(10 * i + k)
print('ready', os.getpid(), flush=True)
"""


def collector_samples(directory):
    """{(name, sorted labels): value} from prometheus_client's own collector."""
    from prometheus_client import multiprocess
    out = {}
    for metric in multiprocess.MultiProcessCollector(None, path=directory).collect():
        for s in metric.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def agent_samples(lines):
    """The agent's --once lines mapped to the collector's sample names."""
    out = {}
    for line in lines:
        rec = json.loads(line)
        tags = rec["tags"]
        labels = tuple(sorted(tags.items()))
        value = rec["value"]
        if rec["kind"] in ("counter", "gauge"):
            out[(rec["name"], labels)] = value
            continue
        out[(rec["name"] + "_count", labels)] = value["count"]
        out[(rec["name"] + "_sum", labels)] = value["sum"]
        if "buckets" in value:
            acc = 0.0
            for bound, count in value["buckets"]:
                acc += count
                le = "+Inf" if bound == "+Inf" else repr(float(bound))
                out[(rec["name"] + "_bucket", tuple(sorted(tags.items() | {("le", le)})))] = acc
    return out


class PromMultiprocMatchesCollector(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="statherd-prom-")
        self.dir = os.path.join(self.tmp, "webapp")
        os.mkdir(self.dir)
        self.empty = os.path.join(self.tmp, "empty")
        os.mkdir(self.empty)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write_from_processes(self, count):
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=self.dir)
        procs = [subprocess.Popen([harness.PYTHON, "-c", WRITER, str(k)], env=env,
                                  stdout=subprocess.PIPE, text=True) for k in range(1, count + 1)]
        for p in procs:
            line = p.stdout.readline()  # the handshake: the process wrote everything
            self.assertTrue(line.startswith("ready"), line)
            p.wait(timeout=60)
            p.stdout.close()

    def run_agent_once(self):
        env = dict(os.environ, TMPDIR=self.empty, STATHERD_DIR=self.empty)
        res = subprocess.run([harness.binary("statherd-agent"), "--once", "--host", "h1",
                              "--prom-multiproc-dir", self.dir], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        return [l for l in res.stdout.splitlines() if '"source":"%s"' % self.dir in l]

    def assert_same(self, expected, got):
        self.assertEqual(sorted(expected), sorted(got))
        for key, value in expected.items():
            if math.isnan(value):
                self.assertIsNone(got[key], key)
            else:
                self.assertAlmostEqual(got[key], value, delta=1e-9 * max(1.0, abs(value)),
                                       msg=str(key))

    def test_every_metric_type_and_gauge_mode_matches(self):
        self.write_from_processes(4)
        lines = self.run_agent_once()
        self.assertTrue(lines)
        for line in lines:
            rec = json.loads(line)
            self.assertEqual(rec["app"], "webapp")
            self.assertIsNone(rec["pid"])
        expected = collector_samples(self.dir)
        self.assertEqual(expected[("jobs_total", (("queue", "fast"),))], 10)
        self.assert_same(expected, agent_samples(lines))

    def test_mark_process_dead_removes_live_gauges_in_both(self):
        self.write_from_processes(3)
        from prometheus_client import multiprocess
        pid = sorted(f.split("_")[-1][:-3] for f in os.listdir(self.dir)
                     if f.startswith("counter_"))[0]
        multiprocess.mark_process_dead(int(pid), self.dir)
        lines = self.run_agent_once()
        got = agent_samples(lines)
        self.assert_same(collector_samples(self.dir), got)
        live_pids = {dict(k[1]).get("pid") for k in got if k[0] == "temp_liveall"}
        all_pids = {dict(k[1]).get("pid") for k in got if k[0] == "temp_all"}
        self.assertEqual(len(all_pids), 3)
        self.assertEqual(live_pids, all_pids - {pid})


if __name__ == "__main__":
    unittest.main()
