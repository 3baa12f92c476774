// The coordinator (server/cluster_coordinator.h) on three servers' memberships against a real
// etcd: one holds the coordinator key, the maps follow who joins and who has been gone
// dead_after, a junk map key is skipped, and when the coordinator leaves another takes over.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/etcd_client.h"
#include "common/shard_map.h"
#include "server/cluster_coordinator.h"
#include "server/cluster_membership.h"
#include "server/shard_leadership.h"
#include "tests/integration/etcd_process.h"

namespace statherd::server {
namespace {

using itest::EtcdProcess;
using itest::eventually;
using namespace std::chrono_literals;


int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const std::string kPrefix = "/statherd/coord/";

// One server's membership and coordinator, as statherd-server wires them.
struct Node {
  std::string id;
  std::unique_ptr<ClusterCoordinator> coordinator;
  std::unique_ptr<ClusterMembership> membership;

  Node(uint16_t port, std::string node_id, std::chrono::milliseconds dead_after = 3s)
      : id(std::move(node_id)) {
    CoordinatorSettings s;
    s.shards = 8;
    s.replicas = 2;
    s.interval = 1s;
    s.dead_after = dead_after;
    s.lead = 2s;
    s.round_budget = 600ms;
    s.lease_ttl = 2s;
    s.keep_superseded = 60s;
    coordinator = std::make_unique<ClusterCoordinator>(s, kPrefix, id);
    MembershipOptions o;
    o.endpoints = {{"127.0.0.1", port}};
    o.prefix = kPrefix;
    o.id = id;
    o.value = R"({"ingest":"http://127.0.0.1:1"})";
    o.lease_ttl = 2s;
    o.on_lost = [c = coordinator.get()] { c->lost(); };
    o.on_renewed = [c = coordinator.get()](std::chrono::steady_clock::time_point sent) {
      c->renewed(sent);
    };
    membership = std::make_unique<ClusterMembership>(std::move(o));
    rounds = std::make_unique<CoordinatorThread>(*coordinator, *membership,
                                                 std::vector<etcd::Endpoint>{{"127.0.0.1", port}},
                                                 600ms, 600ms, now_ms);
  }
  ~Node() { stop(); }
  void stop() {  // as statherd-server stops: no round after the lease is revoked
    rounds->stop();
    membership->stop();
  }
  std::unique_ptr<CoordinatorThread> rounds;
};

// Every valid map in etcd, by epoch.
std::vector<cluster::ShardMap> stored_maps(etcd::Client& c) {
  std::vector<cluster::ShardMap> out;
  auto r = c.get_prefix(kPrefix + "maps/");
  if (!r) return out;
  for (const auto& kv : r->kvs)
    if (auto m = cluster::map_from_json(kv.value, kv.key)) out.push_back(*m);
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.epoch < b.epoch; });
  return out;
}

std::vector<std::string> latest_members(etcd::Client& c) {
  auto maps = stored_maps(c);
  return maps.empty() ? std::vector<std::string>{} : maps.back().members;
}

std::string coordinator_of(etcd::Client& c) {
  auto r = c.get(kPrefix + "coordinator");
  return r && !r->kvs.empty() ? r->kvs[0].value : "";
}

TEST(ClusterCoordinator, MapsFollowTheMembersAndAnotherServerTakesOver) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  Node a(etcd.port(), "a"), b(etcd.port(), "b");
  ASSERT_TRUE(a.membership->start());
  ASSERT_TRUE(b.membership->start());
  using Ids = std::vector<std::string>;
  ASSERT_TRUE(eventually([&] { return latest_members(c) == Ids{"a", "b"}; }))
      << latest_members(c).size();
  const std::string first = coordinator_of(c);
  ASSERT_TRUE(first == "a" || first == "b") << first;
  EXPECT_TRUE(eventually([&] { return a.coordinator->coordinating() != b.coordinator->coordinating(); }));

  // A junk map key (by hand, or a newer statherd's) is skipped, never overwritten.
  ASSERT_TRUE(c.put(kPrefix + "maps/00000000000000000040", "not a map"));
  // An epoch near the wrap is junk too: the next one is not 0 (which nobody would read).
  ASSERT_TRUE(c.put(kPrefix + "maps/18446744073709551615", "junk"));
  Node n3(etcd.port(), "c");
  ASSERT_TRUE(n3.membership->start());
  ASSERT_TRUE(eventually([&] { return latest_members(c) == Ids{"a", "b", "c"}; }));
  auto maps = stored_maps(c);
  EXPECT_EQ(maps.back().epoch, 41u);
  EXPECT_EQ(c.get(kPrefix + "maps/00000000000000000040")->kvs.at(0).value, "not a map");
  // Epochs rise, each map starts on an interval boundary after the one before it, and no
  // map was written before its members registered.
  for (size_t i = 0; i < maps.size(); ++i) {
    EXPECT_EQ(maps[i].from_ms % 1000, 0);
    EXPECT_EQ(maps[i].shards, 8u);
    EXPECT_EQ(maps[i].replicas, 2u);
    if (i > 0) {
      EXPECT_GT(maps[i].epoch, maps[i - 1].epoch);
      EXPECT_GT(maps[i].from_ms, maps[i - 1].from_ms);
    }
  }
  // Every server reads the same maps.
  ASSERT_TRUE(eventually([&] {
    return a.coordinator->maps().size() == maps.size() &&
           b.coordinator->maps().size() == maps.size() &&
           n3.coordinator->maps().size() == maps.size();
  }));

  // The coordinator stops (its lease revoked): another takes the key, and once the stopped
  // one has been gone dead_after (3 s), a map without it.
  Node& leaving = first == "a" ? a : b;
  const std::string staying = first == "a" ? "b" : "a";
  const auto stopped_at = std::chrono::steady_clock::now();
  leaving.stop();
  ASSERT_TRUE(eventually([&] {
    const std::string now = coordinator_of(c);
    return !now.empty() && now != first;
  }));
  Ids rest = {staying, "c"};
  std::sort(rest.begin(), rest.end());
  ASSERT_TRUE(eventually([&] { return latest_members(c) == rest; }));
  EXPECT_GE(std::chrono::steady_clock::now() - stopped_at, 3s);  // not before dead_after
  EXPECT_FALSE(leaving.coordinator->coordinating());  // it knows it left
}

TEST(ClusterCoordinator, AServerBackWithinDeadAfterKeepsTheMap) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  auto a = std::make_unique<Node>(etcd.port(), "a");
  Node b(etcd.port(), "b");
  ASSERT_TRUE(a->membership->start());
  ASSERT_TRUE(b.membership->start());
  using Ids = std::vector<std::string>;
  ASSERT_TRUE(eventually([&] { return latest_members(c) == Ids{"a", "b"}; }));
  const size_t maps_before = stored_maps(c).size();
  a.reset();  // stops: key revoked
  std::this_thread::sleep_for(1500ms);  // half of dead_after
  a = std::make_unique<Node>(etcd.port(), "a");  // the restart
  ASSERT_TRUE(eventually([&] { return a->membership->start().ok(); }));
  std::this_thread::sleep_for(4s);  // past dead_after from when it went
  EXPECT_EQ(stored_maps(c).size(), maps_before);
  EXPECT_EQ(latest_members(c), (Ids{"a", "b"}));
}

// The map in force now, as `node` read it (nullptr before one is).
const cluster::ShardMap* in_force(const std::vector<cluster::ShardMap>& maps) {
  return cluster::map_at(maps, now_ms() / 1000 * 1000);
}

TEST(ShardLeadership, EachShardHasOneLeaderThePreferredReplicaAndASurvivorTakesOver) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  Node a(etcd.port(), "a", 60s), b(etcd.port(), "b", 60s);
  ASSERT_TRUE(a.membership->start());
  ASSERT_TRUE(b.membership->start());
  using Ids = std::vector<std::string>;
  uint64_t epoch = 0;
  ASSERT_TRUE(eventually([&] {
    auto maps = a.coordinator->maps();
    const auto* m = in_force(maps);
    if (!m || m->members != Ids{"a", "b"}) return false;
    epoch = m->epoch;
    auto la = a.coordinator->leadership().led(), lb = b.coordinator->leadership().led();
    return la[epoch].size() + lb[epoch].size() == 8;
  }));
  const auto maps = a.coordinator->maps();
  const cluster::ShardMap* map = nullptr;
  for (const auto& m : maps)
    if (m.epoch == epoch) map = &m;
  ASSERT_NE(map, nullptr);
  auto la = a.coordinator->leadership().led()[epoch];
  auto lb = b.coordinator->leadership().led()[epoch];
  // Disjoint, every shard led, each by its first replica, and the key in etcd says so.
  for (uint32_t shard = 0; shard < 8; ++shard) {
    const std::string first = map->members[map->owners[shard][0]];
    const bool by_a = std::count(la.begin(), la.end(), shard) == 1;
    const bool by_b = std::count(lb.begin(), lb.end(), shard) == 1;
    EXPECT_NE(by_a, by_b) << shard;
    EXPECT_EQ(by_a ? "a" : "b", first) << shard;
    auto key = c.get(ShardLeadership::key(kPrefix, epoch, shard));
    ASSERT_TRUE(key);
    ASSERT_EQ(key->kvs.size(), 1u);
    EXPECT_EQ(key->kvs[0].value, first);
  }
  // Taken before the epoch began: emitting at once is safe.
  EXPECT_TRUE(eventually([&] {
    for (uint32_t shard : la)
      if (!a.coordinator->leadership().may_emit(epoch, shard, std::chrono::steady_clock::now()))
        return false;
    return !la.empty();
  }, 5s));

  // b stops (its lease revoked, its keys gone): a takes b's shards at once (b is unregistered),
  // but emits them only a whole TTL (2 s) later: a stalled b could have emitted until then.
  b.stop();
  const auto stopped = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return a.coordinator->leadership().led()[epoch].size() == 8; }));
  const auto took = std::chrono::steady_clock::now();
  if (!lb.empty() && took - stopped < 1500ms) {
    EXPECT_FALSE(a.coordinator->leadership().may_emit(epoch, lb[0], took));
  }
  EXPECT_TRUE(eventually([&] {
    return a.coordinator->leadership().may_emit(epoch, lb.empty() ? 0 : lb[0],
                                                std::chrono::steady_clock::now());
  }, 6s));
  EXPECT_GE(std::chrono::steady_clock::now() - stopped, 2s);
  EXPECT_TRUE(b.coordinator->leadership().led().empty());  // b knows it leads nothing
}

TEST(ShardLeadership, NoEmitWithoutAFreshRenewalAndKeysOfOldEpochsGo) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  auto lease = c.grant(30);
  ASSERT_TRUE(lease);
  const int64_t t0 = now_ms() / 1000 * 1000;
  auto m1 = cluster::make_map(1, t0 - 100'000, 4, 1, {"a"});
  auto m2 = cluster::make_map(2, t0 - 50'000, 4, 1, {"a"});
  ASSERT_TRUE(m1 && m2);
  LeadershipSettings settings{2s, 1s, 30s};
  ShardLeadership l(settings, kPrefix, "a");
  using Clock = std::chrono::steady_clock;
  const auto now = Clock::now();
  // Only map 1, in force since 100 s: a takes all 4 shards, after the epoch began.
  ASSERT_TRUE(l.tick(c, {*m1}, {"a"}, lease->id, now, t0, now, now + 5s));
  ASSERT_EQ(l.led()[1].size(), 4u);
  EXPECT_FALSE(l.may_emit(1, 0, now));              // taken just now, after the start
  // A TTL after taking it, with a renewal under half a TTL old: yes; older: no.
  ASSERT_TRUE(l.tick(c, {*m1}, {"a"}, lease->id, now + 1900ms, t0, now, now + 5s));
  EXPECT_TRUE(l.may_emit(1, 0, now + 2s));
  EXPECT_FALSE(l.may_emit(1, 0, now + 2900ms));  // the renewal is 1 s (half the TTL) old
  // A renewal between rounds counts at once (the membership's on_renewed), not at the next
  // round: rounds and renewals each come every third of the TTL, so a round's view of the
  // last renewal can be two thirds of a TTL old while the lease is fine.
  l.renewed(now + 2800ms);
  EXPECT_TRUE(l.may_emit(1, 0, now + 2900ms));
  l.renewed(now);  // an older one changes nothing
  EXPECT_TRUE(l.may_emit(1, 0, now + 2900ms));
  // Map 2 in force for 50 s (> keep_superseded 30 s): map 1's keys are deleted, map 2's taken.
  ASSERT_TRUE(l.tick(c, {*m1, *m2}, {"a"}, lease->id, now, t0, now, now + 5s));
  EXPECT_EQ(l.led().count(1), 0u);
  EXPECT_EQ(l.led()[2].size(), 4u);
  EXPECT_TRUE(c.get_prefix(kPrefix + "leaders/00000000000000000001/")->kvs.empty());
  EXPECT_EQ(c.get_prefix(kPrefix + "leaders/00000000000000000002/")->kvs.size(), 4u);
  // A key of this server's (its lease) that it does not know it holds (a take whose answer
  // was lost): adopted, and like any key taken late, emitted only a TTL later.
  ASSERT_TRUE(c.del(ShardLeadership::key(kPrefix, 2, 1)));
  {
    ShardLeadership fresh(settings, kPrefix, "a");
    ASSERT_TRUE(c.put(ShardLeadership::key(kPrefix, 2, 1), "a", lease->id));
    ASSERT_TRUE(fresh.tick(c, {*m1, *m2}, {"a"}, lease->id, now, t0, now, now + 5s));
    EXPECT_EQ(fresh.led()[2].size(), 4u);
    EXPECT_FALSE(fresh.may_emit(2, 1, now));
    ASSERT_TRUE(fresh.tick(c, {*m1, *m2}, {"a"}, lease->id, now + 2s, t0, now, now + 5s));
    EXPECT_TRUE(fresh.may_emit(2, 1, now + 2s));
  }
  // Another holder of a key (a lease lost meanwhile): this server stops counting it as its own.
  ASSERT_TRUE(c.del(ShardLeadership::key(kPrefix, 2, 3)));
  ASSERT_TRUE(c.put(ShardLeadership::key(kPrefix, 2, 3), "x"));
  ASSERT_TRUE(l.tick(c, {*m1, *m2}, {"a"}, lease->id, now, t0, now, now + 5s));
  EXPECT_EQ(l.led()[2].size(), 3u);
  EXPECT_FALSE(l.may_emit(2, 3, now + 10s));
}

// A superseded epoch within the late window still has leaders (its late samples are re-emitted
// by one): taken like the epoch in force's, and by the surviving replica when its leader is gone.
TEST(ShardLeadership, ASupersededEpochWithinTheLateWindowKeepsALeader) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  auto lease_a = c.grant(30), lease_b = c.grant(30);
  ASSERT_TRUE(lease_a && lease_b);
  const int64_t t0 = now_ms() / 1000 * 1000;
  auto m1 = cluster::make_map(1, t0 - 100'000, 4, 2, {"a", "b"});
  auto m2 = cluster::make_map(2, t0 - 10'000, 4, 2, {"a", "b"});  // superseded m1 10 s ago
  ASSERT_TRUE(m1 && m2);
  LeadershipSettings settings{2s, 1s, 30s};
  ShardLeadership la(settings, kPrefix, "a"), lb(settings, kPrefix, "b");
  const auto now = std::chrono::steady_clock::now();
  // a registered before either epoch began (its first round then).
  ASSERT_TRUE(la.tick(c, {}, {"a", "b"}, lease_a->id, now, t0 - 200'000, now, now + 5s));
  ASSERT_TRUE(la.tick(c, {*m1, *m2}, {"a", "b"}, lease_a->id, now, t0, now, now + 5s));
  size_t firsts_of_a = 0;
  for (uint32_t shard = 0; shard < 4; ++shard)
    if (m1->members[m1->owners[shard][0]] == "a") ++firsts_of_a;
  EXPECT_EQ(la.led()[1].size(), firsts_of_a);  // epoch 1 too, not only the one in force
  // a is gone (unregistered, its keys deleted): b takes every key of both epochs at once.
  ASSERT_TRUE(c.revoke(lease_a->id));
  ASSERT_TRUE(lb.tick(c, {*m1, *m2}, {"b"}, lease_b->id, now, t0, now, now + 5s));
  EXPECT_EQ(lb.led()[1].size(), 4u);
  EXPECT_EQ(lb.led()[2].size(), 4u);
}

// What a leader's sinks were handed reaches etcd (`emitted/<epoch>/<shard>`) at its next round,
// and the other replica's view: it drops what it held of those intervals.
TEST(ClusterCoordinator, EmittedMarkersReachTheOtherReplica) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  Node a(etcd.port(), "a", 60s), b(etcd.port(), "b", 60s);
  ASSERT_TRUE(a.membership->start());
  ASSERT_TRUE(b.membership->start());
  uint64_t epoch = 0;
  int64_t start = 0;
  uint32_t shard = 0;
  // A shard a may emit (and b only holds), in an interval of the map in force.
  ASSERT_TRUE(eventually([&] {
    const int64_t t = now_ms() / 1000 * 1000;
    auto va = a.coordinator->view_at(t), vb = b.coordinator->view_at(t);
    if (!va || !vb || va->epoch != vb->epoch) return false;
    for (uint32_t s = 0; s < va->shards; ++s)
      if (va->role[s] == ShardRole::Emit && vb->role[s] == ShardRole::Replica) {
        epoch = va->epoch, start = t, shard = s;
        return true;
      }
    return false;
  }, 20s));
  EXPECT_EQ(b.coordinator->view_at(start)->emitted_ms[shard], kNeverEmitted);
  a.coordinator->emitted(epoch, {shard}, start);
  ASSERT_TRUE(eventually([&] { return b.coordinator->view_at(start)->emitted_ms[shard] == start; }));
  // A server's own marks are not in its view: what it emitted it never held, and a
  // re-emission it held while fenced must still go.
  EXPECT_EQ(a.coordinator->view_at(start)->emitted_ms[shard], kNeverEmitted);
  auto key = c.get(ClusterCoordinator::emitted_key(kPrefix, epoch, shard, "a"));
  ASSERT_TRUE(key);
  ASSERT_EQ(key->kvs.size(), 1u);
  EXPECT_EQ(key->kvs[0].value, std::to_string(start));
  // An older interval noted later never moves it back.
  a.coordinator->emitted(epoch, {shard}, start - 5000);
  a.coordinator->emitted(epoch, {shard}, start + 1000);
  ASSERT_TRUE(eventually([&] {
    return b.coordinator->view_at(start)->emitted_ms[shard] == start + 1000;
  }));
}

// A member back from a restart (its agents' spools for it still replaying) takes its shards
// last: the replica that stayed leads them, even where the one back is the first replica (a
// review found the restarted one retaking them and emitting partial sums).
TEST(ShardLeadership, AServerBackAfterTheEpochBeganDoesNotTakeAheadOfOneThatStayed) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  auto lease_a = c.grant(30), lease_b = c.grant(30);
  ASSERT_TRUE(lease_a && lease_b);
  const int64_t t0 = now_ms() / 1000 * 1000;
  auto m = cluster::make_map(1, t0 - 100'000, 4, 2, {"a", "b"});
  ASSERT_TRUE(m);
  LeadershipSettings settings{2s, 1s, 30s};
  ShardLeadership la(settings, kPrefix, "a"), lb(settings, kPrefix, "b");
  const auto now = std::chrono::steady_clock::now();
  // b has run since before the epoch; a (a member of the map) started again just now.
  const std::map<std::string, int64_t> started = {{"a", t0}, {"b", t0 - 200'000}};
  la.set_started(started);
  lb.set_started(started);
  std::vector<uint32_t> a_first;
  for (uint32_t shard = 0; shard < 4; ++shard)
    if (m->members[m->owners[shard][0]] == "a") a_first.push_back(shard);
  ASSERT_FALSE(a_first.empty());
  // a is back (a new lease, after the epoch began); every key is free; both registered.
  ASSERT_TRUE(la.tick(c, {*m}, {"a", "b"}, lease_a->id, now, t0, now, now + 5s));
  ASSERT_TRUE(lb.tick(c, {*m}, {"a", "b"}, lease_b->id, now, t0, now, now + 5s));
  for (uint32_t shard : a_first) {
    const auto led = la.led()[1];
    EXPECT_EQ(std::count(led.begin(), led.end(), shard), 0) << shard;
  }
  // A third of the TTL later b, the second replica, takes a's shards; a still waits.
  const auto later = now + 700ms;
  ASSERT_TRUE(la.tick(c, {*m}, {"a", "b"}, lease_a->id, later, t0 + 700, later, later + 5s));
  ASSERT_TRUE(lb.tick(c, {*m}, {"a", "b"}, lease_b->id, later, t0 + 700, later, later + 5s));
  EXPECT_EQ(lb.led()[1].size(), 4u);
  EXPECT_TRUE(la.led()[1].empty());
  // With b gone, a takes them at once.
  ASSERT_TRUE(c.revoke(lease_b->id));
  ASSERT_TRUE(la.tick(c, {*m}, {"a"}, lease_a->id, later, t0 + 800, later, later + 5s));
  EXPECT_EQ(la.led()[1].size(), 4u);
}

}  // namespace
}  // namespace statherd::server
