// Per-interval distributions from cumulative sources (issue #14): the engine rolls up the
// difference of each process's cumulative distribution, not its latest state. Every test shifts
// the observed values mid-run: constant values would hide a rollup of cumulative states.
#include <gtest/gtest.h>

#include <cmath>

#include "engine_test_util.h"
#include "server/engine.h"
#include "server/sinks/prometheus.h"

namespace statherd::server {
namespace {

using namespace testing;
constexpr int64_t T0 = 1'700'000'000'000;  // an interval boundary
constexpr int64_t S0 = T0 / 1000;
constexpr int64_t kIv = 1000;

EngineOptions opts() {
  EngineOptions o;
  o.fsync = false;
  o.interval = std::chrono::milliseconds(kIv);
  o.grace = std::chrono::milliseconds(0);
  return o;
}

// A process's cumulative sketch: every observation since it started.
struct Writer {
  Distribution cum;
  void observe(double v, int n) { for (int i = 0; i < n; ++i) cum.sketch.add(v); }
  Sample sample(int64_t ts) const { return dist("lat", cum, ts); }
};

std::optional<double> app(const std::vector<IntervalOutput>& out, int64_t k, const char* stat) {
  return point(out, S0 + k, Level::App, "lat", stat);
}

// Three processes observe 1 ms for 5 intervals, then 100 ms; each reports once per interval.
TEST(EngineDist, CountIsPerIntervalAndP50FollowsAShift) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Writer w[3];
  std::vector<IntervalOutput> out;
  uint64_t seq = 0;
  for (int k = 0; k < 10; ++k) {
    std::vector<SourceSamples> srcs;
    for (int p = 0; p < 3; ++p) {
      w[p].observe(k < 5 ? 0.001 : 0.1, 200);
      srcs.push_back(source(p + 1, {w[p].sample(T0 + k * kIv + 500)}, /*fresh=*/true));
    }
    int64_t now = T0 + k * kIv + 500;
    e.ingest(batch("a", ++seq, std::move(srcs)), now);
    for (auto& o : e.flush(now + kIv)) out.push_back(std::move(o));
  }
  for (int k = 0; k < 9; ++k) EXPECT_EQ(app(out, k, "count"), 600.0) << "interval " << k;
  EXPECT_NEAR(*app(out, 6, "p50"), 0.1, 0.1 * 0.011);
  EXPECT_NEAR(*app(out, 6, "p99"), 0.1, 0.1 * 0.011);
  EXPECT_NEAR(*app(out, 6, "min"), 0.1, 0.1 * 0.011);
  EXPECT_NEAR(*app(out, 6, "mean"), 0.1, 1e-9);
  EXPECT_NEAR(*app(out, 6, "sum"), 60.0, 1e-6);
  EXPECT_NEAR(*app(out, 2, "max"), 0.001, 0.001 * 0.011);
}

TEST(EngineDist, FirstSightingOfARunningProcessIsABaseline) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Writer w;
  w.observe(0.5, 1000);  // before the agent looked
  e.ingest(batch("a", 1, {source(1, {w.sample(T0 + 100)})}), T0 + 100);
  w.observe(2.0, 30);
  e.ingest(batch("a", 2, {source(1, {w.sample(T0 + kIv + 100)})}), T0 + kIv + 100);
  auto out = e.flush(T0 + 3 * kIv);
  EXPECT_EQ(app(out, 0, "count"), 0.0);
  EXPECT_EQ(app(out, 1, "count"), 30.0);
  EXPECT_NEAR(*app(out, 1, "p50"), 2.0, 0.02);
}

// A worker recycled mid-run is a new source (new pid, fresh): its observations count once.
TEST(EngineDist, WorkerRestartNeitherDropsNorDoubles) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Writer old_w, new_w;
  old_w.observe(0.01, 50);
  e.ingest(batch("a", 1, {source(1, {old_w.sample(T0 + 100)}, true)}), T0 + 100);
  old_w.observe(0.01, 20);  // its last observations before it exits
  e.ingest(batch("a", 2, {source(1, {old_w.sample(T0 + kIv + 100)})}), T0 + kIv + 100);
  new_w.observe(0.2, 40);
  e.ingest(batch("a", 3, {source(2, {new_w.sample(T0 + kIv + 200)}, true)}), T0 + kIv + 200);
  new_w.observe(0.2, 10);
  e.ingest(batch("a", 4, {source(2, {new_w.sample(T0 + 2 * kIv + 100)})}), T0 + 2 * kIv + 100);
  auto out = e.flush(T0 + 4 * kIv);
  EXPECT_EQ(app(out, 0, "count"), 50.0);
  EXPECT_EQ(app(out, 1, "count"), 60.0);
  EXPECT_EQ(app(out, 2, "count"), 10.0);
}

// The same identity whose count went down (a writer that re-created its file): the new value
// is the delta, counted as a reset.
TEST(EngineDist, CountGoingDownIsAReset) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Writer w;
  w.observe(1, 100);
  e.ingest(batch("a", 1, {source(1, {w.sample(T0 + 100)}, true)}), T0 + 100);
  Writer again;
  again.observe(3, 7);
  e.ingest(batch("a", 2, {source(1, {again.sample(T0 + kIv + 100)})}), T0 + kIv + 100);
  auto out = e.flush(T0 + 3 * kIv);
  EXPECT_EQ(app(out, 1, "count"), 7.0);
  EXPECT_NEAR(*app(out, 1, "p50"), 3.0, 0.03);
  EXPECT_EQ(e.stats().resets, 1u);
}

TEST(EngineDist, SeveralSamplesInOneIntervalMergeTheirDeltas) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Writer w;
  w.observe(1, 10);
  e.ingest(batch("a", 1, {source(1, {w.sample(T0 + 100)}, true)}), T0 + 100);
  w.observe(5, 20);
  e.ingest(batch("a", 2, {source(1, {w.sample(T0 + 400)})}), T0 + 400);
  w.observe(9, 30);
  e.ingest(batch("a", 3, {source(1, {w.sample(T0 + 800)})}), T0 + 800);
  auto out = e.flush(T0 + 2 * kIv);
  EXPECT_EQ(app(out, 0, "count"), 60.0);
  EXPECT_NEAR(*app(out, 0, "sum"), 10 + 100 + 270, 1e-9);
}

// A late sample goes to the interval it belongs to, which is re-emitted with full values.
TEST(EngineDist, LateSampleReemitsItsIntervalWithFullValues) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Writer a, b;
  a.observe(1, 10);
  b.observe(4, 5);
  e.ingest(batch("a", 1, {source(1, {a.sample(T0 + 100)}, true)}), T0 + 100);
  auto out = e.flush(T0 + 2 * kIv);
  EXPECT_EQ(app(out, 0, "count"), 10.0);
  e.ingest(batch("b", 1, {source(2, {b.sample(T0 + 200)}, true)}), T0 + 2 * kIv + 10);
  out = e.flush(T0 + 2 * kIv + 20);
  EXPECT_EQ(point(out, S0, Level::App, "lat", "count", /*reemit=*/true), 15.0);
}

TEST(EngineDist, BucketHistogramsSubtractBucketByBucket) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Distribution h;
  h.form = Distribution::Form::Buckets;
  h.bucket_upper_bounds = {0.01, 0.1, INFINITY};
  h.bucket_counts = {100, 0, 0};
  h.count = 100; h.sum = 0.5;
  e.ingest(batch("a", 1, {source(1, {dist("lat", h, T0 + 100)}, true)}), T0 + 100);
  h.bucket_counts = {100, 40, 0};
  h.count = 140; h.sum = 0.5 + 40 * 0.08;
  e.ingest(batch("a", 2, {source(1, {dist("lat", h, T0 + kIv + 100)})}), T0 + kIv + 100);
  h.bucket_counts = {90, 40, 0};  // a bucket went down: the process restarted
  h.count = 130;
  e.ingest(batch("a", 3, {source(1, {dist("lat", h, T0 + 2 * kIv + 100)})}), T0 + 2 * kIv + 100);
  auto out = e.flush(T0 + 4 * kIv);
  EXPECT_EQ(app(out, 0, "count"), 100.0);
  EXPECT_EQ(app(out, 1, "count"), 40.0);
  EXPECT_NEAR(*app(out, 1, "sum"), 3.2, 1e-9);
  EXPECT_GT(*app(out, 1, "p50"), 0.01);  // all 40 in (0.01, 0.1]
  EXPECT_EQ(app(out, 2, "count"), 130.0);
  EXPECT_EQ(e.stats().resets, 1u);
}

TEST(EngineDist, SummaryCountAndSumSubtractQuantilesStayTheSources) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Distribution s;
  s.form = Distribution::Form::Summary;
  s.count = 100; s.sum = 10; s.min = 0.1; s.max = 0.2; s.quantiles = {{0.99, 0.15}};
  e.ingest(batch("a", 1, {source(1, {dist("lat", s, T0 + 100)})}), T0 + 100);  // baseline
  s.count = 150; s.sum = 60; s.quantiles = {{0.99, 1.5}};
  e.ingest(batch("a", 2, {source(1, {dist("lat", s, T0 + kIv + 100)})}), T0 + kIv + 100);
  auto out = e.flush(T0 + 3 * kIv);
  EXPECT_EQ(app(out, 0, "count"), 0.0);
  EXPECT_EQ(app(out, 1, "count"), 50.0);
  EXPECT_EQ(app(out, 1, "sum"), 50.0);
  EXPECT_EQ(app(out, 1, "mean"), 1.0);
  EXPECT_EQ(app(out, 1, "p99_max"), 1.5);
}

// Issue #9 item 6: five intervals of an unchanged 4-value sketch gave `_count 20` on /metrics.
// One process reports a bucket histogram and a summary under one name (a rolling deploy that
// changed a metric's type): each keeps its own previous state, so once observations stop the
// interval counts go to 0 instead of one form counting the other's whole state as a reset.
TEST(EngineDist, TwoFormsUnderOneNameKeepTheirOwnBaselines) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  Distribution h;
  h.form = Distribution::Form::Buckets;
  h.bucket_upper_bounds = {0.1, INFINITY};
  h.bucket_counts = {0, 0};
  Distribution sm;
  sm.form = Distribution::Form::Summary;
  std::vector<IntervalOutput> out;
  for (int k = 0; k < 8; ++k) {
    if (k < 4) {  // both observe for 4 intervals, then stop
      h.bucket_counts[0] += 10; h.count += 10; h.sum += 0.5;
      sm.count += 20; sm.sum += 1;
    }
    int64_t now = T0 + k * kIv + 500;
    e.ingest(batch("a", k + 1, {source(1, {dist("lat", h, now), dist("lat", sm, now)}, true)}), now);
    for (auto& o : e.flush(now + kIv)) out.push_back(std::move(o));
  }
  for (int k = 5; k < 7; ++k) EXPECT_EQ(app(out, k, "count"), 0.0) << "interval " << k;
}

TEST(EngineDist, PrometheusCountIsTheFleetTotalNotASumOfCumulativeStates) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  PrometheusSink sink;
  Writer w;
  for (double v : {1.0, 2.0, 3.0, 4.0}) w.cum.sketch.add(v);
  for (int k = 0; k < 5; ++k) {
    e.ingest(batch("a", k + 1, {source(1, {w.sample(T0 + k * kIv + 100)}, true)}),
             T0 + k * kIv + 100);
    for (const auto& o : e.flush(T0 + (k + 1) * kIv + 50)) sink.emit(o);
  }
  w.observe(10, 6);
  e.ingest(batch("a", 6, {source(1, {w.sample(T0 + 5 * kIv + 100)})}), T0 + 5 * kIv + 100);
  for (const auto& o : e.flush(T0 + 6 * kIv + 50)) sink.emit(o);
  std::string text = sink.scrape();
  EXPECT_NE(text.find("statherd_lat_count{app=\"web\",level=\"app\"} 10\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("statherd_lat_sum{app=\"web\",level=\"app\"} 70\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("statherd_lat{app=\"web\",level=\"app\",quantile=\"0.5\"} 10\n"),
            std::string::npos) << text;
}

}  // namespace
}  // namespace statherd::server
