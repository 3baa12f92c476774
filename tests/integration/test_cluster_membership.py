"""statherd-server with an `etcd:` section against a real etcd (issue #13, docs/CLUSTER.md):
it registers as /statherd/<cluster>/members/<id> under a lease, with the URL it serves at;
SIGTERM removes the key at once, SIGKILL leaves it until the lease expires; a second server
given the same id waits until the first one's key goes and never overwrites it; a server whose
etcd is down at start serves anyway and registers when etcd comes up; two servers read the same
shard maps, written by the one holding the coordinator key, and a server dead for dead_after
leaves the next map (GET /api/v1/cluster); a bad section is refused with its file:line.
Routing by the maps is not wired yet."""

import json
import os
import subprocess
import time
import unittest

import harness
from etcd_fixture import Etcd
from fault_proxy import FaultProxy

PREFIX = "/statherd/itest/"


class MemberServer(harness.StatherdServer):
    """statherd-server in a workdir of its own, with an etcd section in its YAML file."""

    def __init__(self, parent, name, etcd_url, member_id, lease_ttl="3s", more=""):
        workdir = os.path.join(parent, name)
        os.makedirs(workdir, exist_ok=True)
        token = harness.write_token_file(workdir)
        super().__init__(workdir, token, graphite="-", interval="1s")
        self.config_path = os.path.join(workdir, "server.yaml")
        with open(self.config_path, "w") as f:
            f.write(f"etcd:\n  endpoints: [{etcd_url}]\n  cluster: itest\n"
                    f"  id: {member_id}\n  lease_ttl: {lease_ttl}\n{more}")

    def argv(self):
        return super().argv() + ["--config", self.config_path]

    def log(self):
        return self.process.read_stderr()


def settled_one(server, members):
    view = server.get_json("/api/v1/cluster")
    return view["maps"] and view["maps"][-1]["members"] == members and view


def server_without_etcd_answers_404(parent):
    workdir = os.path.join(parent, "single")
    os.makedirs(workdir, exist_ok=True)
    server = harness.StatherdServer(workdir, harness.write_token_file(workdir)).start()
    try:
        status, body = harness.http_request(server.url + "/api/v1/cluster")
        return status == 404 and b"not in a cluster" in body
    finally:
        server.stop()


class ClusterMembershipTest(unittest.TestCase):
    def setUp(self):
        import tempfile
        self._tmp = tempfile.TemporaryDirectory(prefix="statherd-membership-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.processes = []
        self.addCleanup(self._stop_all)

    def _stop_all(self):
        for p in reversed(self.processes):
            p.stop()
        if harness.test_has_failed(self):
            for p in self.processes:
                if getattr(p, "process", None) is not None:
                    print(p.process.log_tail())

    def started(self, thing):
        self.processes.append(thing)
        return thing.start()

    def member(self, etcd, member_id):
        got = etcd.get(PREFIX + "members/" + member_id)
        if got is None:
            return None
        value, lease = got
        return json.loads(value), lease

    def test_registers_while_running_and_leaves_at_sigterm(self):
        etcd = self.started(Etcd(self.tmp))
        server = self.started(MemberServer(self.tmp, "s1", etcd.url, "s1"))
        info, lease = harness.wait_for(lambda: self.member(etcd, "s1"), 15,
                                       what="members/s1 in etcd")
        self.assertEqual(info["id"], "s1")
        self.assertEqual(info["ingest"], server.url)  # the default advertise: its listen address
        self.assertEqual(info["interval_ms"], 1000)
        self.assertGreater(lease, 0)
        self.assertGreater(etcd.lease_ttl(lease), 0)
        # Renewed: still there after twice its 3 s TTL, under the same lease.
        deadline = time.monotonic() + 6.5
        while time.monotonic() < deadline:
            self.assertEqual(self.member(etcd, "s1")[1], lease)
            time.sleep(0.25)
        self.assertIn(f"cluster: joining /statherd/itest/ as s1, advertising {server.url} (etcd "
                      f"{etcd.url})", server.log())
        self.assertIn("cluster: registered as /statherd/itest/members/s1", server.log())
        self.assertEqual(server.stop(), 0)
        self.assertIsNone(self.member(etcd, "s1"))  # at once: the lease was revoked at stop
        self.assertLessEqual(etcd.lease_ttl(lease), 0)
        self.assertIn("cluster: left (/statherd/itest/members/s1 removed)", server.log())

    def test_sigkill_leaves_the_key_until_its_lease_expires(self):
        etcd = self.started(Etcd(self.tmp))
        server = self.started(MemberServer(self.tmp, "s1", etcd.url, "s1"))
        _, lease = harness.wait_for(lambda: self.member(etcd, "s1"), 15, what="members/s1")
        server.kill()
        self.assertIsNotNone(self.member(etcd, "s1"))  # nobody revoked it
        harness.wait_for(lambda: self.member(etcd, "s1") is None, 3 + 10,
                         what="members/s1 to go with its lease")
        self.assertLessEqual(etcd.lease_ttl(lease), 0)

    def test_a_second_server_with_the_same_id_waits_for_the_first(self):
        etcd = self.started(Etcd(self.tmp))
        first = self.started(MemberServer(self.tmp, "first", etcd.url, "same"))
        harness.wait_for(lambda: self.member(etcd, "same"), 15, what="members/same")
        second = self.started(MemberServer(self.tmp, "second", etcd.url, "same"))
        harness.wait_for(lambda: "held by another member" in second.log(), 15,
                         what="the second server to report the id in use")
        # It serves meanwhile, and the key stays the first one's through its retries.
        self.assertTrue(second.healthy())
        for _ in range(8):
            self.assertEqual(self.member(etcd, "same")[0]["ingest"], first.url)
            time.sleep(0.25)
        self.assertEqual(first.stop(), 0)
        info, _ = harness.wait_for(lambda: self.member(etcd, "same"), 15,
                                   what="the second server to take the id")
        self.assertEqual(info["ingest"], second.url)
        harness.wait_for(lambda: "cluster: registered as /statherd/itest/members/same"
                         in second.log(), 5, what="the second server to log that it registered")

    def test_etcd_down_at_start_then_up(self):
        etcd = Etcd(self.tmp)  # its port chosen, not started
        server = self.started(MemberServer(self.tmp, "s1", etcd.url, "s1"))
        self.assertTrue(server.healthy())
        harness.wait_for(lambda: "etcd unreachable" in server.log(), 10,
                         what="the server to report etcd unreachable")
        self.assertIn("(retrying every 1000 ms; this server serves its agents meanwhile)",
                      server.log())
        self.started(etcd)
        info, _ = harness.wait_for(lambda: self.member(etcd, "s1"), 15, what="members/s1")
        self.assertEqual(info["ingest"], server.url)
        # etcd restarted (same data dir): the server keeps running and stays registered.
        etcd.stop()
        self.assertTrue(server.healthy())
        etcd.start()
        _, lease = harness.wait_for(lambda: self.member(etcd, "s1"), 15,
                                    what="members/s1 after a restart")
        self.assertTrue(server.healthy())
        # etcd restored the lease with a fresh TTL: the key outlives two more TTLs (3 s) only if
        # the server goes on renewing it.
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            self.assertIsNotNone(self.member(etcd, "s1"), server.log())
            time.sleep(0.25)
        self.assertGreater(etcd.lease_ttl(self.member(etcd, "s1")[1]), 0)

    def test_two_servers_share_one_map_and_a_dead_one_leaves_it(self):
        etcd = self.started(Etcd(self.tmp))
        more = "  dead_after: 4s\n  shards: 32\n"
        s1 = self.started(MemberServer(self.tmp, "s1", etcd.url, "s1", "2s", more))
        s2 = self.started(MemberServer(self.tmp, "s2", etcd.url, "s2", "2s", more))

        def views():
            return [s.get_json("/api/v1/cluster") for s in (s1, s2)]

        def settled(members):
            vs = views()
            return all(v["maps"] and v["maps"][-1]["members"] == members for v in vs) and vs

        v1, v2 = harness.wait_for(lambda: settled(["s1", "s2"]), 30, what="a map of s1 and s2")
        self.assertEqual(v1["maps"], v2["maps"])  # both read the same maps
        self.assertEqual(v1["coordinator"], v2["coordinator"])
        self.assertIn(v1["coordinator"], ("s1", "s2"))
        self.assertEqual([v1["coordinating"], v2["coordinating"]].count(True), 1)
        self.assertTrue(v1["membership"]["registered"] and v2["membership"]["registered"])
        self.assertEqual(v1["membership"]["registrations"], 1)
        self.assertEqual(set(v1["members"]), {"s1", "s2"})
        self.assertEqual(v1["members"]["s2"]["ingest"], s2.url)
        latest = v1["maps"][-1]
        self.assertEqual((latest["shards"], latest["replicas"]), (32, 2))
        self.assertEqual(latest["from_ms"] % 1000, 0)
        coordinator_log = (s1 if v1["coordinating"] else s2).log()
        self.assertIn(f"cluster: wrote map {latest['epoch']} (members s1,s2, 32 shards, "
                      "2 replicas)", coordinator_log)
        # Once in force, two servers and two replicas: each holds every shard, and leads half.
        v1, v2 = harness.wait_for(
            lambda: all(v["in_force"] == latest["epoch"] for v in views()) and views(), 30,
            what="the map to come in force")
        self.assertEqual(v1["shards_held"], list(range(32)))
        self.assertEqual(v2["shards_held"], list(range(32)))
        self.assertEqual(v1["first_replica_of"] + v2["first_replica_of"], 32)
        self.assertGreater(min(v1["first_replica_of"], v2["first_replica_of"]), 0)
        # One leader per shard, the first replica (both up), each free to emit its shards.
        epoch = str(latest["epoch"])

        def leaders():
            vs = views()
            led = [set(v["leads"].get(epoch, [])) for v in vs]
            return (len(led[0]) + len(led[1]) == 32 and sum(v["may_emit"] for v in vs) == 32
                    and (vs, led))
        (v1, v2), (led1, led2) = harness.wait_for(leaders, 30, what="a leader for every shard")
        self.assertFalse(led1 & led2)
        self.assertEqual(len(led1), v1["first_replica_of"])
        self.assertEqual(len(led2), v2["first_replica_of"])

        # s2 dies: its key goes with its lease (2 s), and 4 s later a map without it.
        killed_at = time.monotonic()
        s2.kill()
        v1 = harness.wait_for(lambda: settled_one(s1, ["s1"]), 30, what="a map without s2")
        self.assertGreaterEqual(time.monotonic() - killed_at, 4)
        self.assertTrue(v1["coordinating"])
        self.assertEqual(set(v1["members"]), {"s1"})
        # s1 took over s2's shards of the old epoch too (after its TTL), and leads the new one.
        self.assertEqual(set(v1["leads"][epoch]), set(range(32)))
        self.assertTrue(server_without_etcd_answers_404(self.tmp))

    def test_a_slow_etcd_never_costs_the_lease(self):
        # Every etcd call 0.4 s slow (under the 1 s deadline of a 3 s lease): the coordinator's
        # round must not push the next renewal past the lease (it did: a registration every
        # ~4 s, no map ever written).
        etcd = self.started(Etcd(self.tmp))
        proxy = FaultProxy(etcd.port).start()
        self.addCleanup(proxy.stop)
        proxy.delay = 0.4
        server = self.started(MemberServer(self.tmp, "s1", proxy.url, "s1", "3s"))
        view = harness.wait_for(lambda: (v := server.get_json("/api/v1/cluster"))["maps"] and v,
                                30, what="a map written through the slow etcd")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            view = server.get_json("/api/v1/cluster")
            self.assertEqual(view["membership"]["registrations"], 1, server.log())
            time.sleep(0.5)
        self.assertNotIn("expired; registering again", server.log())
        self.assertTrue(view["coordinating"])

    def test_a_bad_section_is_refused_with_its_line(self):
        path = os.path.join(self.tmp, "bad.yaml")
        with open(path, "w") as f:
            f.write("interval: 10s\netcd:\n  endpoints: [https://127.0.0.1:2379]\n"
                    "  lease_ttl: 1s\n")
        token = harness.write_token_file(self.tmp)
        run = subprocess.run([harness.binary("statherd-server"), "--config", path,
                              "--token-file", token, "--state-dir", "", "--check-config"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn(f"{path}:3:14: etcd.endpoints: etcd endpoint \"https://127.0.0.1:2379\": "
                      "https is not supported", run.stderr)
        self.assertIn(f"{path}:4:14: etcd.lease_ttl: out of range", run.stderr)


if __name__ == "__main__":
    unittest.main()
