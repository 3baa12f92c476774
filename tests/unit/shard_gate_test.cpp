// ShardGate (server/shard_gate.h): which records of each interval a cluster member hands to
// Graphite and remote_write, fed intervals whose values change from one to the next (so a held
// interval emitted later must carry its own values, not the latest) and views that change as
// leadership moves.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>
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

  std::optional<EmitView> view_at(int64_t, std::chrono::steady_clock::time_point) const override {
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

// Views whose role changes with the number of view_at calls or the interval (the fencing ending
// between two calls, a new map led without a fence), from a review of the gate.
struct ScriptedViews : EmitViews {
  mutable int calls = 0;
  int emit_after_calls = 1 << 30;
  int64_t marker_ms = kNeverEmitted;
  std::function<ShardRole(int64_t start_ms)> by_start;
  std::optional<EmitView> view_at(int64_t start_ms, std::chrono::steady_clock::time_point) const override {
    EmitView v;
    v.epoch = 1;
    v.shards = kShards;
    ShardRole r = calls++ >= emit_after_calls ? ShardRole::Emit : ShardRole::Replica;
    if (by_start) r = by_start(start_ms);
    v.role.assign(kShards, r);
    v.emitted_ms.assign(kShards, marker_ms);
    return v;
  }
  void emitted(uint64_t, const std::vector<uint32_t>&, int64_t) override {}
};

IntervalOutput late(int n, const std::vector<std::string>& metrics) {
  IntervalOutput out = interval(n, metrics);
  out.reemit = true;
  for (auto& st : out.stats) st.value += 0.5;  // the late samples' share
  return out;
}

std::vector<int64_t> starts_of(const std::vector<IntervalOutput>& outs) {
  std::vector<int64_t> v;
  for (const auto& o : outs)
    for (size_t i = 0; i < o.records.size(); ++i) v.push_back(o.start_s);
  return v;
}

TEST(ShardGate, ASeriesReachesTheSinksInTimeOrderWhenTheLeadComesMidPass) {
  ScriptedViews views;
  ShardGate gate(views, 100);
  std::vector<int64_t> sent;
  for (int n = 1; n <= 3; ++n) EXPECT_TRUE(gate.pass(interval(n, {"m"})).empty());
  // The next pass sees the held intervals as not emitted yet, the current one as emitted (the
  // fence ended in between): the current one waits behind them.
  views.emit_after_calls = views.calls + 3;
  for (int n = 4; n <= 5; ++n) {
    auto s = starts_of(gate.pass(interval(n, {"m"})));
    sent.insert(sent.end(), s.begin(), s.end());
  }
  EXPECT_EQ(sent, (std::vector<int64_t>{kT0 + 10, kT0 + 20, kT0 + 30, kT0 + 40, kT0 + 50}));
}

TEST(ShardGate, ANewMapLedAtOnceWaitsForTheHeldEndOfThePreviousOne) {
  // Map 2 from interval 5, led without a fence (taken before it began); map 1's shard taken
  // from a dead leader, fenced until pass 7.
  ScriptedViews views;
  int pass_no = 0;
  views.by_start = [&](int64_t ms) {
    if (ms >= (kT0 + 50) * 1000) return ShardRole::Emit;
    return pass_no >= 7 ? ShardRole::Emit : ShardRole::Replica;
  };
  ShardGate gate(views, 100);
  std::vector<int64_t> sent;
  for (pass_no = 1; pass_no <= 8; ++pass_no) {
    auto s = starts_of(gate.pass(interval(pass_no, {"m"})));
    sent.insert(sent.end(), s.begin(), s.end());
  }
  std::vector<int64_t> want;
  for (int n = 1; n <= 8; ++n) want.push_back(kT0 + n * 10);
  EXPECT_EQ(sent, want);
}

TEST(ShardGate, AHeldReemissionGoesOnlyOnceItsLeaderRecordedALaterRollup) {
  ScriptedViews views;
  ShardGate gate(views, 100);
  // The leader recorded interval 6, then died; late data for interval 2 arrives after the
  // rollup of interval 7: the leader never sent that correction.
  views.marker_ms = (kT0 + 60) * 1000;
  EXPECT_TRUE(gate.pass(interval(7, {"m"})).empty());
  EXPECT_TRUE(gate.pass(late(2, {"m"})).empty());
  views.emit_after_calls = 0;  // this replica leads now
  auto outs = gate.pass(interval(8, {"m"}));
  EXPECT_EQ(seen(outs), (decltype(seen(outs)){{kT0 + 70, "m", 70},
                                              {kT0 + 20, "m", 20.5},
                                              {kT0 + 80, "m", 80}}));
  // Had the leader recorded interval 8 (rolled up after the correction), it would have gone.
  ScriptedViews led;
  ShardGate other(led, 100);
  led.marker_ms = (kT0 + 60) * 1000;
  EXPECT_TRUE(other.pass(interval(7, {"m"})).empty());
  EXPECT_TRUE(other.pass(late(2, {"m"})).empty());
  led.marker_ms = (kT0 + 80) * 1000;
  EXPECT_TRUE(other.pass(interval(8, {"m"})).empty());
  EXPECT_EQ(other.stats().left_to_leader, 2u);  // 7 and the correction (8, just held, next pass)
}

TEST(ShardGate, ReemissionsDoNotPushIntervalsOutOfTheBound) {
  ScriptedViews views;
  ShardGate gate(views, 8);
  for (int n = 10; n < 15; ++n) {  // a takeover of 5 intervals, 2 corrections per rollup
    gate.pass(late(n - 3, {"late"}));
    gate.pass(late(n - 2, {"late"}));
    gate.pass(interval(n, {"m", "late"}));
  }
  EXPECT_EQ(gate.stats().dropped_records, 0u);
  views.emit_after_calls = 0;
  std::set<int64_t> regular;
  for (const auto& o : gate.pass(interval(15, {"m", "late"})))
    for (const auto& r : o.records)
      if (r.key->metric == "m") regular.insert(o.start_s);
  for (int n = 10; n <= 15; ++n) EXPECT_TRUE(regular.count(kT0 + n * 10)) << n;
}

TEST(ShardGate, AnIntervalNotOverYetIsNeverEmitted) {
  // The drain hands the sinks the interval being filled: partial on this server.
  FakeViews views;
  int64_t wall_ms = (kT0 + 15) * 1000;  // interval 1 (kT0+10 .. kT0+20) not over
  ShardGate gate(views, 8, [&] { return wall_ms; });
  EXPECT_TRUE(gate.pass(interval(1, {"m"})).empty());
  EXPECT_EQ(gate.stats().held_records, 1u);
  wall_ms = (kT0 + 20) * 1000;
  EXPECT_EQ(starts_of(gate.pass(interval(2, {}))), (std::vector<int64_t>{kT0 + 10}));
}

TEST(ShardGate, ALeaderFencedForAWhileSendsItsHeldIntervalsAndTheirCorrections) {
  // etcd out of reach for a while: the leader may not emit (fenced); interval 3 was rolled up
  // empty (its batches waited at the agent), then corrected by late data. Once it may emit
  // again, both go, in the order they were made, before interval 5.
  ScriptedViews views;
  int pass_no = 0;
  views.by_start = [&](int64_t) { return pass_no >= 3 && pass_no < 6 ? ShardRole::Replica : ShardRole::Emit; };
  ShardGate gate(views, 100);
  std::vector<std::pair<int64_t, double>> sent;
  auto send = [&](const IntervalOutput& o) {
    for (const auto& out : gate.pass(o))
      for (const auto& r : out.records) sent.emplace_back(out.start_s, out.stats_of(r)[0].value);
  };
  for (pass_no = 1; pass_no <= 2; ++pass_no) send(interval(pass_no, {"m"}));
  pass_no = 3;
  IntervalOutput empty3 = interval(3, {"m"});
  empty3.stats[0].value = 0;
  send(empty3);
  pass_no = 4;
  send(interval(4, {"m"}));
  pass_no = 5;
  send(late(3, {"m"}));  // 30.5: the late batches of interval 3
  pass_no = 6;
  send(interval(5, {"m"}));
  EXPECT_EQ(sent, (std::vector<std::pair<int64_t, double>>{{kT0 + 10, 10}, {kT0 + 20, 20},
                                                            {kT0 + 30, 0}, {kT0 + 40, 40},
                                                            {kT0 + 30, 30.5}, {kT0 + 50, 50}}));
}

}  // namespace
}  // namespace statherd::server
