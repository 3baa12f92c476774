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

import carbon_fixture
import harness
import mmstats_v1
import pipeline
from etcd_fixture import Etcd
from test_cluster_emit import LineReceiver, assert_no_gap, merged_emitted, sums_of

SHARDS = 8
HOSTS = ("h1", "h2")


class ClusterServer(harness.StatherdServer):
    def __init__(self, parent, name, token_file, etcd_url, graphite, port=None, dead_after="60s"):
        workdir = os.path.join(parent, name)
        os.makedirs(workdir, exist_ok=True)
        super().__init__(workdir, token_file, graphite=graphite, interval="1s", port=port)
        self.name = name
        self.etcd_url = etcd_url
        self.config_path = os.path.join(workdir, "server.yaml")
        with open(self.config_path, "w") as f:
            f.write(f"etcd:\n  endpoints: [{etcd_url}]\n  cluster: agents\n  id: {name}\n"
                    f"  lease_ttl: 2s\n  shards: {SHARDS}\n  replicas: 2\n"
                    f"  dead_after: {dead_after}\n")

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


def start_hosts(test, servers, etcd, rate, duration):
    """Two hosts, each a stats dir with a sentinel file, an agent routing by the maps, and two
    writers (apps alpha and beta) started once the agent's first batch reached a server (so
    every increment counts). Returns [(host, writer)]; test.stats_dir is h1's."""
    stats_dirs = {}
    for host in HOSTS:
        stats_dirs[host] = os.path.join(test.workdir, f"stats-{host}")
        os.makedirs(stats_dirs[host])
        pid = os.getpid()
        mmstats_v1.write_file(os.path.join(stats_dirs[host], f"sentinel-{pid}-{pid}.mmstats"),
                              [("up", "Q", 1, True)])
        test.started(ClusterAgent(test.workdir, host, test.token_file, stats_dirs[host], etcd.url))
    for host in HOSTS:
        harness.wait_for(lambda: any(s.find(f"statherd.sentinel.hosts.{host}.*")
                                     for s in servers.values()), 60, interval=0.2,
                         what=f"agent {host}'s first batch on a server")
    writers = []
    for host in HOSTS:
        for i, app in enumerate(("alpha", "beta")):
            w = pipeline.Writer(test.workdir, stats_dirs[host], app, f"{host}-{i}", counters=3,
                                rate=rate, duration=duration)
            test.managed.append(w)
            writers.append((host, w))
    for _, w in writers:
        w.wait_ready()
    test.stats_dir = stats_dirs["h1"]
    return writers


def expected_counts(writers):
    """{path: total}: the app- and host-level count paths of every writer's counters."""
    expected = {}
    for host, w in writers:
        for name, total in w.totals().items():
            for path in (f"statherd.{w.app}.{name}.count",
                         f"statherd.{w.app}.hosts.{host}.{name}.count"):
                expected[path] = expected.get(path, 0) + total
    return expected


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

        writers = start_hosts(self, servers, etcd, rate=120, duration=22)
        self.wait_progress([w for h, w in writers if h == "h1"], 1500)

        # SIGKILL s2 for a while; the agents keep its batches; then the same s2 again.
        victim = servers["s2"]
        victim.kill()
        self.wait_progress([w for h, w in writers if h == "h1"], 2000)
        spooled = [f for host in HOSTS for f in os.listdir(
            os.path.join(self.workdir, f"spool-{host}", "servers", "s2"))
            if f.endswith(".batch")]
        self.assertTrue(spooled, "no batch waiting in an agent's spool for s2 while it was down")
        # --status shows each server's spool (the status file, rewritten every tick).
        def s2_waiting():
            import json
            with open(os.path.join(self.workdir, "spool-h1", "status.json")) as f:
                servers_status = {v["id"]: v for v in json.load(f)["servers"]}
            return (set(servers_status) == set(names) and
                    servers_status["s2"]["batches"] > 0 and servers_status["s2"]["url"] == victim.url)
        harness.wait_for(s2_waiting, 10, what="the status file showing s2's waiting batches")
        servers["s2"] = self.started(ClusterServer(self.workdir, "s2", self.token_file, etcd.url,
                                                   receivers["s2"].address, port=victim.port))

        for _, w in writers:
            w.wait_done(90)
        expected = expected_counts(writers)

        def emitted():
            return merged_emitted(self, receivers)

        def sums():
            return sums_of(emitted(), expected)

        try:
            harness.wait_for(lambda: sums() == expected, 120, interval=0.5,
                             what="the writers' totals in what the servers emitted")
        except harness.WaitTimeout:
            self.fail(f"emitted sums {sums()} != writers' totals {expected}")
        merged = emitted()
        assert_no_gap(self, merged, expected)
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

class ClusterChangesTest(pipeline.PipelineTestCase):
    """The issue's test: etcd + 3 servers (R = 2) + 2 agents + Python writers + one
    carbon-cache. SIGKILL one server for 20 s and restart it; add a 4th server mid-run; remove
    one. At the end Carbon's app-level totals equal the increments written exactly, and no
    interval of an app-level path was written with a partial sum (every value any server sent
    for an interval is the same)."""

    def started(self, thing):
        self.managed.append(thing)
        return thing.start()

    def in_force_members(self, server):
        view = server.get_json("/api/v1/cluster")
        if view["in_force"] is None:
            return None
        return next(m["members"] for m in view["maps"] if m["epoch"] == view["in_force"])

    def test_kill_add_remove_loses_and_doubles_nothing(self):
        self.token_file = harness.write_token_file(self.workdir)
        carbon = self.started(carbon_fixture.CarbonCache(self.workdir))
        self.carbon = carbon
        etcd = self.started(Etcd(self.workdir))
        receivers, servers = {}, {}

        def start_server(name, port=None):
            receivers.setdefault(name, LineReceiver(relay=carbon.address))
            servers[name] = self.started(ClusterServer(
                self.workdir, name, self.token_file, etcd.url, receivers[name].address,
                port=port, dead_after="30s"))
            return servers[name]

        for name in ("s1", "s2", "s3"):
            start_server(name)
        self.addCleanup(lambda: [r.close() for r in receivers.values()])

        def members_in_force(want):
            live = [s for n, s in servers.items() if s.process.running()]
            return all(self.in_force_members(s) == want for s in live)
        harness.wait_for(lambda: members_in_force(["s1", "s2", "s3"]), 60, interval=0.2,
                         what="a map of s1, s2, s3 in force")

        writers = start_hosts(self, servers, etcd, rate=60, duration=85)
        h1_writers = [w for h, w in writers if h == "h1"]
        per_second = 2 * 6 * 60  # h1's two writers: 1+2+3 per round, 60 rounds a second
        self.wait_progress(h1_writers, 3 * per_second)

        # 1. SIGKILL s2 for 20 s (measured in the writers' work), then the same s2 again.
        killed = servers["s2"]
        killed.kill()
        self.wait_progress(h1_writers, 20 * per_second, timeout=120)
        start_server("s2", port=killed.port)

        # 2. A 4th server: the next map holds it (shards move to it at an interval boundary).
        start_server("s4")
        harness.wait_for(lambda: members_in_force(["s1", "s2", "s3", "s4"]), 60, interval=0.2,
                         what="a map of s1..s4 in force")
        self.wait_progress(h1_writers, 3 * per_second)

        # 3. Remove s3: stopped, it leaves the next map after dead_after (30 s).
        self.assertEqual(servers["s3"].stop(), 0)
        harness.wait_for(lambda: members_in_force(["s1", "s2", "s4"]), 90, interval=0.5,
                         what="a map without s3 in force")

        for _, w in writers:
            w.wait_done(120)
        expected = expected_counts(writers)

        def received():
            """{(path, ts): [every value any server sent]} of the writers' count paths."""
            out = {}
            for r in receivers.values():
                for key, values in r.all_values("statherd.").items():
                    if key[0] in expected:
                        out.setdefault(key, []).extend(values)
            return out

        def sums():
            got = received()
            return {m: sum(v[-1] for (p, _), v in got.items() if p == m) for m in expected}

        try:
            harness.wait_for(lambda: sums() == expected, 120, interval=0.5,
                             what="the writers' totals in what the servers sent")
        except harness.WaitTimeout:
            self.fail(f"sent sums {sums()} != writers' totals {expected}")
        got = received()
        partial = {k: v for k, v in got.items() if len(set(v)) > 1}
        if partial:
            who = {k: [(n, r.all_values(k[0]).get(k)) for n, r in receivers.items()
                       if r.all_values(k[0]).get(k)] for k in list(partial)[:6]}
            self.fail(f"{len(partial)} intervals sent with different values: {who}")
        for m in expected:
            stamps = sorted(ts for (p, ts) in got if p == m)
            self.assertEqual(stamps, list(range(stamps[0], stamps[-1] + 1)), m)
        # Carbon holds exactly the writers' totals (and keeps them: nothing arrives later).
        for path, total in expected.items():
            self.wait_carbon_sum(path, total, timeout=60)
        self.wait_more_intervals_any(receivers)
        for path, total in expected.items():
            self.assertEqual(carbon.sum(path), total, path)
        # The shards moved: s4 led some, and the series kept their totals through the moves.
        self.assertTrue(any(p.startswith(("statherd.alpha.", "statherd.beta."))
                            for (p, _) in receivers["s4"].all_values("statherd.")),
                        "s4 never sent a writer series")

    def wait_more_intervals_any(self, receivers, intervals=3):
        def newest():
            return max((ts for r in receivers.values()
                        for (_, ts) in r.last_values("statherd.sentinel.")), default=0)
        last = newest()
        harness.wait_for(lambda: newest() >= last + intervals, 60, what="more intervals")


if __name__ == "__main__":
    import unittest
    unittest.main()
