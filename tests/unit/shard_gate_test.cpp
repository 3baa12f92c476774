// ShardGate (server/shard_gate.h): which records of each interval a cluster member hands to
// Graphite and remote_write, fed intervals whose values change from one to the next (so a held
// interval emitted later must carry its own values, not the latest) and views that change as
// leadership moves.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/shard_map.h"
#include "server/shard_gate.h"

namespace statherd::server {
namespace {

constexpr uint32_t kShards = 4;
constexpr int64_t kT0 = 1'700'000'000;  // seconds: interval starts kT0, kT0 + 10, ...

class FakeViews : public EmitViews {
 public:
  // Every shard of every interval: `role`, unless set per shard.
  ShardRole role = ShardRole::Emit;
  std::map<uint32_t, ShardRole> by_shard;
  std::map<uint32_t, int64_t> marker_ms;  // what etcd says the leader emitted
  bool no_map = false;
  uint64_t epoch = 7;
  std::vector<std::pair<uint32_t, int64_t>> noted;  // emitted(): shard, interval start

  std::optional<EmitView> view_at(int64_t) const override {
    if (no_map) return std::nullopt;
    EmitView v;
    v.epoch = epoch;
    v.shards = kShards;
    v.role.assign(kShards, role);
    v.emitted_ms.assign(kShards, kNeverEmitted);
    for (const auto& [s, r] : by_shard) v.role[s] = r;
    for (const auto& [s, m] : marker_ms) v.emitted_ms[s] = m;
    return v;
  }
  void emitted(uint64_t e, const std::vector<uint32_t>& shards, int64_t start_ms) override {
    EXPECT_EQ(e, epoch);
    for (uint32_t s : shards) noted.emplace_back(s, start_ms);
  }
};

uint32_t shard_of(const std::string& app, const std::string& metric) {
  return cluster::shard_of(cluster::series_hash(app, metric, {}), kShards);
}

// Two metrics of app "web" on different shards, found by search (the hash is fixed).
struct TwoShards {
  std::string a = "m0", b;
  TwoShards() {
    for (int i = 1; b.empty(); ++i)
      if (shard_of("web", "m" + std::to_string(i)) != shard_of("web", a)) b = "m" + std::to_string(i);
  }
};

// Interval `n`: one app-level counter record per metric, its count n * 10 + k (k: the metric's
// position), so each interval's values differ.
IntervalOutput interval(int n, const std::vector<std::string>& metrics) {
  IntervalOutput out;
  out.start_s = kT0 + n * 10;
  out.interval_s = 10;
  int k = 0;
  for (const auto& m : metrics) {
    RollupRecord& r = out.add(make_series_key(Level::App, "web", "", -1, m, {}), SeriesKind::Counter);
    r.count_total = 1000 + n;
    out.stat("count", n * 10 + k++);
  }
  return out;
}

// (start_s, metric, count) of every record, in order.
std::vector<std::tuple<int64_t, std::string, double>> seen(const std::vector<IntervalOutput>& outs) {
  std::vector<std::tuple<int64_t, std::string, double>> v;
  for (const auto& o : outs)
    for (const auto& r : o.records) {
      auto stats = o.stats_of(r);
      v.emplace_back(o.start_s, r.key->metric, stats.empty() ? -1 : stats[0].value);
    }
  return v;
}

TEST(ShardGate, ALeaderOfEveryShardEmitsEverythingAndNotesIt) {
  FakeViews views;
  ShardGate gate(views, 8);
  TwoShards m;
  auto outs = gate.pass(interval(1, {m.a, m.b}));
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(seen(outs), (decltype(seen(outs)){{kT0 + 10, m.a, 10}, {kT0 + 10, m.b, 11}}));
  EXPECT_EQ(outs[0].records[0].count_total, 1001);  // the totals travel with the record
  ASSERT_EQ(views.noted.size(), 2u);
  for (const auto& [s, start] : views.noted) EXPECT_EQ(start, (kT0 + 10) * 1000);
  EXPECT_EQ(gate.stats().held_records, 0u);
}

TEST(ShardGate, OnlyTheShardsThisServerMayEmitPass) {
  FakeViews views;
  TwoShards m;
  views.role = ShardRole::None;
  views.by_shard[shard_of("web", m.a)] = ShardRole::Emit;
  ShardGate gate(views, 8);
  auto outs = gate.pass(interval(1, {m.a, m.b}));
  EXPECT_EQ(seen(outs), (decltype(seen(outs)){{kT0 + 10, m.a, 10}}));
  EXPECT_EQ(gate.stats().not_owned_records, 1u);
  EXPECT_EQ(gate.stats().held_records, 0u);
  // Nothing of this server's: no output at all (not an empty one).
  views.by_shard.clear();
  EXPECT_TRUE(gate.pass(interval(2, {m.a, m.b})).empty());
}

TEST(ShardGate, AReplicaHoldsThenEmitsEachHeldIntervalWithItsOwnValuesWhenItGainsTheLead) {
  FakeViews views;
  TwoShards m;
  views.role = ShardRole::Replica;
  ShardGate gate(views, 8);
  EXPECT_TRUE(gate.pass(interval(1, {m.a, m.b})).empty());
  EXPECT_TRUE(gate.pass(interval(2, {m.a, m.b})).empty());
  EXPECT_EQ(gate.stats().held_intervals, 2u);
  EXPECT_EQ(gate.stats().held_records, 4u);
  // The leader recorded interval 1 of shard(a) only, then died; this server leads now.
  views.marker_ms[shard_of("web", m.a)] = (kT0 + 10) * 1000;
  views.role = ShardRole::Emit;
  auto outs = gate.pass(interval(3, {m.a, m.b}));
  EXPECT_EQ(seen(outs), (decltype(seen(outs)){{kT0 + 10, m.b, 11},
                                              {kT0 + 20, m.a, 20},
                                              {kT0 + 20, m.b, 21},
                                              {kT0 + 30, m.a, 30},
                                              {kT0 + 30, m.b, 31}}));
  // Oldest first, one output per interval, so remote_write sees each series in time order.
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(outs[0].start_s, kT0 + 10);
  EXPECT_EQ(outs[1].start_s, kT0 + 20);
  EXPECT_EQ(gate.stats().caught_up_records, 3u);
  EXPECT_EQ(gate.stats().left_to_leader, 1u);
  EXPECT_EQ(gate.stats().held_records, 0u);
  EXPECT_EQ(gate.stats().held_intervals, 0u);
  // And nothing twice afterwards.
  EXPECT_EQ(seen(gate.pass(interval(4, {m.a}))), (decltype(seen(outs)){{kT0 + 40, m.a, 40}}));
}

TEST(ShardGate, HeldIntervalsGoOnceTheLeaderRecordsThem) {
  FakeViews views;
  TwoShards m;
  views.role = ShardRole::Replica;
  ShardGate gate(views, 8);
  for (int n = 1; n <= 3; ++n) EXPECT_TRUE(gate.pass(interval(n, {m.a, m.b})).empty());
  EXPECT_EQ(gate.stats().held_records, 6u);
  views.marker_ms[shard_of("web", m.a)] = (kT0 + 30) * 1000;
  views.marker_ms[shard_of("web", m.b)] = (kT0 + 20) * 1000;
  EXPECT_TRUE(gate.pass(interval(4, {m.a, m.b})).empty());
  // Left: b of interval 3, and interval 4.
  EXPECT_EQ(gate.stats().held_records, 3u);
  EXPECT_EQ(gate.stats().held_intervals, 2u);
  EXPECT_EQ(gate.stats().left_to_leader, 5u);
}

TEST(ShardGate, HeldIntervalsAreBoundedOldestDroppedAndCounted) {
  FakeViews views;
  TwoShards m;
  views.role = ShardRole::Replica;
  ShardGate gate(views, 2);
  for (int n = 1; n <= 4; ++n) EXPECT_TRUE(gate.pass(interval(n, {m.a, m.b})).empty());
  EXPECT_EQ(gate.stats().held_intervals, 2u);
  EXPECT_EQ(gate.stats().dropped_records, 4u);
  views.role = ShardRole::Emit;
  auto outs = gate.pass(interval(5, {m.a}));
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(outs[0].start_s, kT0 + 30);  // intervals 1 and 2 were dropped
}

TEST(ShardGate, BeforeAnyMapEverythingIsHeldForTheFirstMapsLeaders) {
  FakeViews views;
  TwoShards m;
  views.no_map = true;
  ShardGate gate(views, 8);
  EXPECT_TRUE(gate.pass(interval(1, {m.a, m.b})).empty());
  EXPECT_EQ(gate.stats().held_records, 2u);
  views.no_map = false;
  views.role = ShardRole::None;
  views.by_shard[shard_of("web", m.b)] = ShardRole::Emit;
  auto outs = gate.pass(interval(2, {m.a, m.b}));
  EXPECT_EQ(seen(outs), (decltype(seen(outs)){{kT0 + 10, m.b, 11}, {kT0 + 20, m.b, 21}}));
  EXPECT_EQ(gate.stats().held_records, 0u);
  EXPECT_EQ(gate.stats().not_owned_records, 2u);
}

TEST(ShardGate, TheServersOwnSelfMetricsAlwaysPass) {
  FakeViews views;
  views.role = ShardRole::None;
  ShardGate gate(views, 8);
  IntervalOutput out;
  out.start_s = kT0;
  out.add(make_series_key(Level::Host, "self", "h1", -1, "server.batches", {}), SeriesKind::Counter);
  out.stat("count", 3);
  out.add(make_series_key(Level::Host, "self", "h1", -1, "agent.sent", {}), SeriesKind::Counter);
  out.stat("count", 4);
  auto outs = gate.pass(out);
  ASSERT_EQ(outs.size(), 1u);
  ASSERT_EQ(outs[0].records.size(), 1u);
  EXPECT_EQ(outs[0].records[0].key->metric, "server.batches");
  EXPECT_EQ(outs[0].stats_of(outs[0].records[0])[0].value, 3);
}

TEST(ShardGate, HeldRecordsKeepTheirKeysAliveAfterTheIntervalIsGone) {
  FakeViews views;
  views.role = ShardRole::Replica;
  ShardGate gate(views, 8);
  {
    IntervalOutput out = interval(1, {"short-lived"});
    EXPECT_TRUE(gate.pass(out).empty());
  }  // the engine's output is gone; the held copy still points at its key
  views.role = ShardRole::Emit;
  auto outs = gate.pass(interval(2, {}));
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].records.at(0).key->metric, "short-lived");
}

}  // namespace
}  // namespace statherd::server
