#include "server/engine.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/ewma.h"
#include "engine_test_util.h"
#include "server/engine_impl.h"

namespace statherd::server {
namespace {

using namespace testing;
constexpr int64_t T0 = 1'700'000'000'000;  // an interval boundary
constexpr int64_t S0 = T0 / 1000;

EngineOptions opts() {
  EngineOptions o;
  o.fsync = false;
  return o;
}

TEST(Engine, CounterDeltasBaselineAndReset) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  // Not fresh: the first sighting only sets the baseline.
  EXPECT_EQ(e.ingest(batch("a", 1, {source(1, {counter("req", 100, T0 + 1000)})}), T0 + 1000).http_status, 200);
  EXPECT_EQ(e.ingest(batch("a", 2, {source(1, {counter("req", 130, T0 + 5000)})}), T0 + 5000).http_status, 200);
  EXPECT_EQ(e.ingest(batch("a", 3, {source(1, {counter("req", 7, T0 + 12000)})}), T0 + 12000).http_status, 200);
  auto out = e.flush(T0 + 22'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 30.0);
  EXPECT_EQ(point(out, S0, Level::App, "req", "rate"), 3.0);
  EXPECT_EQ(point(out, S0, Level::Host, "req", "count"), 30.0);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count"), 7.0);  // reset: delta = value
  EXPECT_EQ(e.stats().resets, 1u);
}

TEST(Engine, FreshSourceCountsWholeValue) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 40, T0)}, /*fresh=*/true),
                          source(2, {counter("req", 1000, T0)}, /*fresh=*/false)}), T0);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 40.0);
}

TEST(Engine, NewSeriesInKnownSourceCountsWholeValue) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 5, T0)})}), T0);
  e.ingest(batch("a", 2, {source(1, {counter("req", 5, T0 + 1), counter("err", 2, T0 + 1)})}), T0 + 1);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "err", "count"), 2.0);
}

TEST(Engine, DuplicateSeqIsAcknowledgedButNotApplied) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 0, T0)})}), T0);
  std::string b2 = batch("a", 2, {source(1, {counter("req", 10, T0 + 1)})});
  EXPECT_FALSE(e.ingest(b2, T0 + 1).duplicate);
  IngestOutcome again = e.ingest(b2, T0 + 2);
  EXPECT_EQ(again.http_status, 200);
  EXPECT_TRUE(again.duplicate);
  // Gaps are allowed.
  EXPECT_FALSE(e.ingest(batch("a", 9, {source(1, {counter("req", 15, T0 + 3)})}), T0 + 3).duplicate);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 15.0);
  EXPECT_EQ(e.stats().duplicates, 1u);
}

TEST(Engine, BadPayloadIs400) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  IngestOutcome o = e.ingest("garbage", T0);
  EXPECT_EQ(o.http_status, 400);
  EXPECT_FALSE(o.message.empty());
  EXPECT_EQ(e.stats().rejected_batches, 1u);
}

TEST(Engine, BatchOverTheSampleLimitIs413SoTheAgentSplitsIt) {
  EngineOptions o = opts();
  o.wire_limits.max_samples = 2;
  Engine e(o);
  ASSERT_TRUE(e.open(T0).ok());
  std::string three = batch("a", 1, {source(1, {counter("x", 1, T0), counter("y", 2, T0),
                                                counter("z", 3, T0)})});
  IngestOutcome big = e.ingest(three, T0);
  EXPECT_EQ(big.http_status, 413) << big.message;  // not 400: the agent would quarantine it
  std::string two = batch("a", 1, {source(1, {counter("x", 1, T0), counter("y", 2, T0)})});
  EXPECT_EQ(e.ingest(two, T0).http_status, 200) << "the refused batch was not applied";
}

TEST(Engine, LateDataReemitsFullValuesAndFeedsNextTick) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 0, T0)}), source(2, {counter("req", 0, T0)})}), T0);
  e.ingest(batch("a", 2, {source(1, {counter("req", 10, T0 + 5000)})}), T0 + 5000);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 10.0);
  // Source 2 reports late for the first interval.
  e.ingest(batch("b", 1, {source(2, {counter("req", 20, T0 + 6000)})}), T0 + 13'000);
  out = e.flush(T0 + 22'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count", true), 30.0);  // full value
  EXPECT_EQ(point(out, S0, Level::App, "req", "rate", true), 3.0);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count", false), 0.0);
  // EWMA: first tick 10 events, second tick 0 + 20 late events.
  Ewma m1(1, 10);
  m1.tick(10);
  m1.tick(20);
  EXPECT_DOUBLE_EQ(*point(out, S0 + 10, Level::App, "req", "m1_rate"), m1.rate());
}

TEST(Engine, EwmaMatchesDefinitionAndZeroIntervalsTick) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 0, T0)})}), T0);
  e.ingest(batch("a", 2, {source(1, {counter("req", 50, T0 + 1)})}), T0 + 1);
  e.ingest(batch("a", 3, {source(1, {counter("req", 80, T0 + 20'001)})}), T0 + 20'001);
  auto out = e.flush(T0 + 32'000);
  Meter ref(10);
  for (double events : {50.0, 0.0, 30.0}) ref.tick(events);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count"), 0.0);
  EXPECT_DOUBLE_EQ(*point(out, S0 + 20, Level::App, "req", "m1_rate"), ref.m1.rate());
  EXPECT_DOUBLE_EQ(*point(out, S0 + 20, Level::App, "req", "m5_rate"), ref.m5.rate());
  EXPECT_DOUBLE_EQ(*point(out, S0 + 20, Level::App, "req", "m15_rate"), ref.m15.rate());
  // alpha = 1 - exp(-10/60); first tick = instant rate 5/s, second decays it.
  double a1 = 1 - std::exp(-10.0 / 60.0);
  EXPECT_NEAR(*point(out, S0 + 10, Level::App, "req", "m1_rate"), 5.0 + a1 * (0 - 5.0), 1e-12);
}

TEST(Engine, LateBeyondWindowGoesToOldestOpenInterval) {
  EngineOptions o = opts();
  o.late_window = std::chrono::milliseconds(30'000);
  Engine e(o);
  ASSERT_TRUE(e.open(T0).ok());
  int64_t now = T0 + 100'000;
  e.ingest(batch("a", 1, {source(1, {counter("req", 0, now)})}), now);
  e.ingest(batch("a", 2, {source(1, {counter("req", 9, T0)})}), now + 1);  // 100 s old
  EXPECT_EQ(e.stats().late_samples, 1u);
  auto out = e.drain(now + 5000);
  EXPECT_EQ(point(out, now / 1000, Level::App, "req", "count"), 9.0);
}

TEST(Engine, FutureSampleGoesToCurrentInterval) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {gauge("q", 4, T0 + 3'600'000)})}), T0 + 1);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "q", "max"), 4.0);
}

TEST(Engine, GaugeStatsAcrossSources) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  std::vector<SourceSamples> src;
  for (int i = 1; i <= 10; ++i) src.push_back(source(i, {gauge("q", i * 10.0, T0 + 1)}));
  src[0].samples.push_back(gauge("q", 5, T0 + 2));  // last value per source wins: 5, not 10
  e.ingest(batch("a", 1, std::move(src)), T0 + 2);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "q", "min"), 5.0);
  EXPECT_EQ(point(out, S0, Level::App, "q", "max"), 100.0);
  EXPECT_EQ(point(out, S0, Level::App, "q", "sum"), 545.0);
  EXPECT_DOUBLE_EQ(*point(out, S0, Level::App, "q", "mean"), 54.5);
  EXPECT_EQ(point(out, S0, Level::App, "q", "p50"), 50.0);  // nearest rank: 5th of 10
  EXPECT_EQ(point(out, S0, Level::App, "q", "p90"), 90.0);
  EXPECT_EQ(point(out, S0, Level::App, "q", "p99"), 100.0);
}

TEST(Engine, ProcessLevelGaugeLast) {
  EngineOptions o = opts();
  o.level_process = true;
  Engine e(o);
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(7, {gauge("q", 3, T0), gauge("q", 8, T0 + 1)})}), T0 + 1);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::Process, "q", "last"), 8.0);
}

// Fresh sources: their distributions count whole on first sighting (see engine_dist_test).
TEST(Engine, SketchesMergeAcrossSources) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Distribution a, b;
  for (int i = 1; i <= 500; ++i) a.sketch.add(i);
  for (int i = 501; i <= 1000; ++i) b.sketch.add(i);
  e.ingest(batch("a", 1, {source(1, {dist("lat", a, T0)}, true), source(2, {dist("lat", b, T0)}, true)}), T0);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "lat", "count"), 1000.0);
  EXPECT_EQ(point(out, S0, Level::App, "lat", "min"), 1.0);
  EXPECT_EQ(point(out, S0, Level::App, "lat", "max"), 1000.0);
  EXPECT_NEAR(*point(out, S0, Level::App, "lat", "p50"), 500, 500 * 0.011);
  EXPECT_NEAR(*point(out, S0, Level::App, "lat", "p99"), 990, 990 * 0.011);
}

TEST(Engine, SummariesReportMaxAndWeightedAverage) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Distribution a, b;
  a.form = b.form = Distribution::Form::Summary;
  a.count = 100; a.sum = 1000; a.min = 1; a.max = 50; a.quantiles = {{0.99, 40}};
  b.count = 300; b.sum = 600; b.min = 0.5; b.max = 20; b.quantiles = {{0.99, 10}};
  e.ingest(batch("a", 1, {source(1, {dist("t", a, T0)}, true), source(2, {dist("t", b, T0)}, true)}), T0);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "t", "count"), 400.0);
  EXPECT_EQ(point(out, S0, Level::App, "t", "sum"), 1600.0);
  EXPECT_EQ(point(out, S0, Level::App, "t", "mean"), 4.0);
  EXPECT_EQ(point(out, S0, Level::App, "t", "p99_max"), 40.0);
  EXPECT_EQ(point(out, S0, Level::App, "t", "p99_avg"), (100 * 40 + 300 * 10) / 400.0);
  EXPECT_FALSE(point(out, S0, Level::App, "t", "p99").has_value());
}

TEST(Engine, BucketsMergeAndInterpolate) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Distribution a;
  a.form = Distribution::Form::Buckets;
  a.bucket_upper_bounds = {1, 2, INFINITY};
  a.bucket_counts = {10, 20, 0};
  a.count = 30; a.sum = 40;
  e.ingest(batch("a", 1, {source(1, {dist("h", a, T0)}, true), source(2, {dist("h", a, T0)}, true)}), T0);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "h", "count"), 60.0);
  // rank 30 of 60: 20 in (0,1], then 10 of 40 into (1,2] -> 1.25.
  EXPECT_DOUBLE_EQ(*point(out, S0, Level::App, "h", "p50"), 1.25);
}

TEST(Engine, IdleSeriesExpireAndStopEmittingZeros) {
  EngineOptions o = opts();
  o.idle_timeout = std::chrono::milliseconds(30'000);
  Engine e(o);
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 1, T0)})}), T0);
  auto out = e.flush(T0 + 22'000);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count"), 0.0);  // known, no data: 0
  // Idle while its agent keeps sending (other sources): expired.
  e.ingest(batch("a", 2, {source(2, {counter("other", 1, T0 + 61'000)})}), T0 + 61'000);
  out = e.flush(T0 + 62'000);
  EXPECT_FALSE(point(out, S0 + 50, Level::App, "req", "count").has_value());
  EXPECT_EQ(e.stats().series, 1u);   // "other"
  EXPECT_EQ(e.stats().sources, 1u);
}

// The records point at their keys without a count of their own (issue #10: two atomic
// operations per series and interval on a cold line); the output pins the engine's keys. An
// output made before its series expired must still reach the key once the engine dropped it.
const SeriesKey* key_of(const std::vector<IntervalOutput>& outs, const std::string& metric) {
  for (const IntervalOutput& o : outs)
    for (const RollupRecord& r : o.records)
      if (r.key->level == Level::App && r.key->metric == metric) return r.key;
  return nullptr;
}

TEST(Engine, AnOutputKeepsTheKeysOfSeriesThatExpireAfterIt) {
  EngineOptions o = opts();
  o.idle_timeout = std::chrono::milliseconds(30'000);
  o.late_window = std::chrono::milliseconds(30'000);
  Engine e(o);
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 1, T0)})}), T0);
  std::vector<IntervalOutput> first = e.flush(T0 + 12'000);
  const SeriesKey* req = key_of(first, "req");
  ASSERT_NE(req, nullptr);
  SeriesKeyRef probe(req);
  ASSERT_EQ(probe.use_count(), 2u);  // the engine's aggregate and the probe
  // "req" goes idle while "other" keeps its agent sending: it expires, and once the late window
  // has passed the engine recycles its aggregate and lets go of its key.
  std::vector<std::vector<IntervalOutput>> later;
  for (int i = 1; i <= 20; ++i) {
    const int64_t now = T0 + i * 10'000;
    e.ingest(batch("a", 1 + static_cast<uint64_t>(i), {source(2, {counter("other", i, now)})}), now);
    later.push_back(e.flush(now + 2'000));
  }
  EXPECT_EQ(e.stats().series, 1u);
  EXPECT_EQ(req->metric, "req");           // first's record still reaches it
  EXPECT_GE(probe.use_count(), 2u) << "only the probe holds the key: `first` points at it unpinned";
  first.clear();
  later.clear();
  EXPECT_EQ(probe.use_count(), 1u) << "the engine (or a graveyard) still holds a dropped key";
}

TEST(Engine, AnOutputKeepsItsKeysAfterTheEngineIsGone) {
  std::vector<IntervalOutput> out;
  SeriesKeyRef probe;
  {
    Engine e(opts());
    ASSERT_TRUE(e.open(T0).ok());
    e.ingest(batch("a", 1, {source(1, {gauge("q", 2, T0)})}), T0);
    out = e.flush(T0 + 12'000);
    ASSERT_NE(key_of(out, "q"), nullptr);
    probe = SeriesKeyRef(key_of(out, "q"));
  }
  EXPECT_EQ(probe.use_count(), 2u) << "the output's pin and the probe";
  EXPECT_EQ(point(out, S0, Level::App, "q", "max"), 2.0);
  out.clear();
  EXPECT_EQ(probe.use_count(), 1u);
}

// Graveyards nobody pins any more (flushes that buried keys but emitted nothing) form a chain
// the oldest holds: freeing it must not recurse once per link.
TEST(Engine, ALongGraveyardChainIsFreedWithoutRecursion) {
  auto head = std::make_shared<KeyGraveyard>();
  KeyGraveyard* tail = head.get();
  for (int i = 0; i < 1'000'000; ++i) {
    tail->next = std::make_shared<KeyGraveyard>();
    tail = tail->next.get();
  }
  SeriesKeyRef probe = make_series_key(Level::App, "web", "", -1, "req", {});
  tail->keys.push_back(probe);
  auto held = head->next;  // a link someone else still holds stays, with what follows it
  head.reset();
  EXPECT_EQ(probe.use_count(), 2u);
  held.reset();
  EXPECT_EQ(probe.use_count(), 1u);
}

// A server stopped or paused, or an agent down (its batches waiting in its spool), longer than
// the idle timeout: nothing expires, so the agent's batches continue every series where it was
// (found by the hostile review of #15: every total restarted near 0 and increments were lost).
// An agent silent for over an hour is taken for gone.
TEST(Engine, SeriesOfASilentAgentDoNotExpireUntilItIsTakenForGone) {
  EngineOptions o = opts();
  o.idle_timeout = std::chrono::milliseconds(30'000);
  Engine e(o);
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 100, T0)})}), T0);
  e.flush(T0 + 300'000);  // 5 minutes without a batch from agent a
  EXPECT_EQ(e.stats().sources, 1u);
  e.ingest(batch("a", 2, {source(1, {counter("req", 160, T0 + 301'000)})}), T0 + 301'000);
  auto out = e.flush(T0 + 312'000);
  EXPECT_EQ(point(out, S0 + 300, Level::App, "req", "count"), 60.0) << "a delta, not a baseline";
  e.flush(T0 + 301'000 + 3'601'000);
  EXPECT_EQ(e.stats().sources, 0u);
}

TEST(Engine, CardinalityCapsRejectNewSeries) {
  EngineOptions o = opts();
  o.max_series_per_source = 2;
  o.max_series_total = 3;
  Engine e(o);
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {gauge("a", 1, T0), gauge("b", 1, T0), gauge("c", 1, T0)}),
                          source(2, {gauge("a", 1, T0), gauge("b", 1, T0)})}), T0);
  EXPECT_EQ(e.stats().series, 3u);
  EXPECT_EQ(e.stats().series_rejected, 2u);
}

TEST(Engine, SourcesJsonListsAgentsSourcesAndErrors) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Batch b;
  b.agent_id = "agent-1";
  b.seq = 4;
  b.sources = {source(3, {gauge("q", 1, T0)})};
  b.errors = {{b.sources[0].id.path, "torn read"}};
  e.ingest(encode_batch(b), T0 + 5);
  nlohmann::json j = e.sources_json(T0 + 6);
  ASSERT_EQ(j["agents"].size(), 1u);
  EXPECT_EQ(j["agents"][0]["last_seq"], 4);
  ASSERT_EQ(j["sources"].size(), 1u);
  EXPECT_EQ(j["sources"][0]["pid"], 3);
  EXPECT_EQ(j["sources"][0]["series"], 1);
  EXPECT_EQ(j["sources"][0]["last_seen_ms"], T0 + 5);
  EXPECT_EQ(j["sources"][0]["errors"][0], "torn read");
}

TEST(Engine, DrainEmitsCurrentPartialInterval) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {gauge("q", 2, T0 + 3000)})}), T0 + 3000);
  EXPECT_TRUE(e.flush(T0 + 4000).empty());
  auto out = e.drain(T0 + 4000);
  EXPECT_EQ(point(out, S0, Level::App, "q", "max"), 2.0);
}

}  // namespace
}  // namespace statherd::server
