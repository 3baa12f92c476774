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
#include "tests/integration/etcd_process.h"

namespace statherd::server {
namespace {

using itest::EtcdProcess;
using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& what, std::chrono::milliseconds limit = 20s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (what()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return what();
}

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

  Node(uint16_t port, std::string node_id) : id(std::move(node_id)) {
    CoordinatorSettings s;
    s.shards = 8;
    s.replicas = 2;
    s.interval = 1s;
    s.dead_after = 3s;
    s.lead = 2s;
    s.round_budget = 600ms;
    coordinator = std::make_unique<ClusterCoordinator>(s, kPrefix, id);
    MembershipOptions o;
    o.endpoints = {{"127.0.0.1", port}};
    o.prefix = kPrefix;
    o.id = id;
    o.value = R"({"ingest":"http://127.0.0.1:1"})";
    o.lease_ttl = 2s;
    o.after_renewal = [c = coordinator.get()](etcd::Client& client, int64_t lease) {
      c->tick(client, lease, now_ms());
    };
    o.on_lost = [c = coordinator.get()] { c->lost(); };
    membership = std::make_unique<ClusterMembership>(std::move(o));
  }
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
  leaving.membership->stop();
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

}  // namespace
}  // namespace statherd::server
