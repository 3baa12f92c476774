"""Agents routing by the shard maps (issue #13, docs/CLUSTER.md "Agents"), with real processes:
etcd, three statherd-servers (8 shards, 2 replicas), two statherd-agents (two hosts, each with
an `etcd:` section and no server URL of its own) and Python mmstats writers whose pace changes.
Each server's Graphite sink points at a line receiver of its own.

Every agent splits each batch by the servers owning each sample's shard and keeps one spool per
server. SIGKILL one server for a while, then start it again on the same state dir and port: the
agents keep its batches in its spool and replay them when it is back, the live replicas lead
its shards meanwhile, and the sum of the app- and host-level counts over every interval any
server emitted equals the writers' exact totals, with no gap and no interval written twice with
different values.
"""

import os

import harness
import mmstats_v1
import pipeline
from etcd_fixture import Etcd
from test_cluster_emit import LineReceiver

SHARDS = 8
HOSTS = ("h1", "h2")


class ClusterServer(harness.StatherdServer):
    def __init__(self, parent, name, token_file, etcd_url, graphite, port=None):
        workdir = os.path.join(parent, name)
        os.makedirs(workdir, exist_ok=True)
        super().__init__(workdir, token_file, graphite=graphite, interval="1s", port=port)
        self.name = name
        self.etcd_url = etcd_url
        self.config_path = os.path.join(workdir, "server.yaml")
        with open(self.config_path, "w") as f:
            f.write(f"etcd:\n  endpoints: [{etcd_url}]\n  cluster: agents\n  id: {name}\n"
                    f"  lease_ttl: 2s\n  shards: {SHARDS}\n  replicas: 2\n")

    def argv(self):
        return super().argv() + ["--config", self.config_path]


class ClusterAgent(harness.StatherdAgent):
    def __init__(self, workdir, host, token_file, stats_dir, etcd_url):
        self.config_path = os.path.join(workdir, f"agent-{host}.yaml")
        with open(self.config_path, "w") as f:
            f.write(f"etcd:\n  endpoints: [{etcd_url}]\n  cluster: agents\n")
        super().__init__(workdir, "http://127.0.0.1:9", token_file,
                         [os.path.join(stats_dir, "*.mmstats")], host=host,
                         spool_dir=os.path.join(workdir, f"spool-{host}"),
                         extra_args=["--config", self.config_path, "--agent-id", host])


class ClusterAgentsTest(pipeline.PipelineTestCase):
    def started(self, thing):
        self.managed.append(thing)
        return thing.start()

    def test_a_server_killed_and_restarted_gets_its_batches_and_nothing_is_lost(self):
        self.token_file = harness.write_token_file(self.workdir)
        etcd = self.started(Etcd(self.workdir))
        names = ("s1", "s2", "s3")
        receivers = {name: LineReceiver() for name in names}
        for r in receivers.values():
            self.addCleanup(r.close)
        servers = {name: self.started(ClusterServer(self.workdir, name, self.token_file,
                                                    etcd.url, receivers[name].address))
                   for name in names}

        def settled():
            views = [s.get_json("/api/v1/cluster") for s in servers.values()]
            ok = all(v["in_force"] is not None and v["maps"][-1]["epoch"] == v["in_force"]
                     and v["maps"][-1]["members"] == list(names) for v in views)
            return ok and sum(v["may_emit"] for v in views) == SHARDS
        harness.wait_for(settled, 60, interval=0.2,
                         what="a map of the three servers in force, every shard led")

        stats_dirs, agents = {}, {}
        for host in HOSTS:
            stats_dirs[host] = os.path.join(self.workdir, f"stats-{host}")
            os.makedirs(stats_dirs[host])
            pid = os.getpid()
            mmstats_v1.write_file(os.path.join(stats_dirs[host], f"sentinel-{pid}-{pid}.mmstats"),
                                  [("up", "Q", 1, True)])
            agents[host] = self.started(ClusterAgent(self.workdir, host, self.token_file,
                                                     stats_dirs[host], etcd.url))

        def sentinel_seen(host):
            return any(s.find(f"statherd.sentinel.hosts.{host}.*") for s in servers.values())
        for host in HOSTS:
            harness.wait_for(lambda: sentinel_seen(host), 60, interval=0.2,
                             what=f"agent {host}'s first batch on a server")

        writers = []
        for host in HOSTS:
            for i, app in enumerate(("alpha", "beta")):
                w = pipeline.Writer(self.workdir, stats_dirs[host], app, f"{host}-{i}",
                                    counters=3, rate=120, duration=22)
                self.managed.append(w)
                writers.append((host, w))
        for _, w in writers:
            w.wait_ready()
        self.stats_dir = stats_dirs["h1"]
        self.wait_progress([w for h, w in writers if h == "h1"], 1500)

        # SIGKILL s2 for a while; the agents keep its batches; then the same s2 again.
        victim = servers["s2"]
        victim.kill()
        self.wait_progress([w for h, w in writers if h == "h1"], 2000)
        spooled = [f for host in HOSTS for f in os.listdir(
            os.path.join(self.workdir, f"spool-{host}", "servers", "s2"))
            if f.endswith(".batch")]
        self.assertTrue(spooled, "no batch waiting in an agent's spool for s2 while it was down")
        servers["s2"] = self.started(ClusterServer(self.workdir, "s2", self.token_file, etcd.url,
                                                   receivers["s2"].address, port=victim.port))

        for _, w in writers:
            w.wait_done(90)
        expected = {}
        for host, w in writers:
            for name, total in w.totals().items():
                for path in (f"statherd.{w.app}.{name}.count",
                             f"statherd.{w.app}.hosts.{host}.{name}.count"):
                    expected[path] = expected.get(path, 0) + total

        def emitted():
            merged = {}
            for name, r in receivers.items():
                for key, value in r.last_values("statherd.").items():
                    if key[0].startswith("statherd.self."):
                        continue
                    if key in merged and merged[key] != value:
                        self.fail(f"{key} emitted as {merged[key]} and {value}")
                    merged[key] = value
            return merged

        def sums():
            merged = emitted()
            return {m: sum(v for (p, _), v in merged.items() if p == m) for m in expected}

        try:
            harness.wait_for(lambda: sums() == expected, 120, interval=0.5,
                             what="the writers' totals in what the servers emitted")
        except harness.WaitTimeout:
            self.fail(f"emitted sums {sums()} != writers' totals {expected}")
        merged = emitted()
        for m in expected:
            stamps = sorted(ts for (p, ts) in merged if p == m)
            self.assertEqual(stamps, list(range(stamps[0], stamps[-1] + 1)), m)
        # Every interval as a replica that never stopped rolled it up (its history): no partial
        # sum from the restarted server, whose agents' batches were still replaying.
        compared = 0
        for path in expected:
            if ".hosts." in path:
                continue
            holder = next(srv for n, srv in servers.items()
                          if n != "s2" and srv.find(path.rsplit(".", 1)[0] + ".*"))
            history = {ts: v for v, ts in holder.render(path)[0]["datapoints"] if v is not None}
            for (p, ts), value in merged.items():
                if p == path and ts in history:
                    self.assertEqual(value, history[ts], f"{path} at {ts}")
                    compared += 1
        self.assertGreater(compared, 6 * 10)
        # Each series is on its shard's two replicas only (the agents split every batch).
        for app in ("alpha", "beta"):
            for c in range(3):
                holders = [n for n, srv in servers.items()
                           if srv.find(f"statherd.{app}.counter{c}.*")]
                self.assertEqual(len(holders), 2, f"statherd.{app}.counter{c} on {holders}")
        # s2 got the batches it missed: every agent's spool for it empties.
        harness.wait_for(lambda: not any(
            f.endswith(".batch") for host in HOSTS for f in os.listdir(
                os.path.join(self.workdir, f"spool-{host}", "servers", "s2"))), 60,
            what="the agents' spools for s2 to empty")
        last = max(ts for (_, ts) in merged)
        harness.wait_for(lambda: max(ts for (_, ts) in emitted()) >= last + 3, 30,
                         what="three more intervals")
        self.assertEqual(sums(), expected)


if __name__ == "__main__":
    import unittest
    unittest.main()
