// Distributions whose sum is not known (Distribution::sum_unknown: a prometheus_client _sum
// that went NaN after one NaN observation, a Scales PMF). The hostile review of issue #14: one
// NaN observation cost the whole series from then on. Now count, buckets and quantiles keep
// flowing; the interval has no sum and no mean; the exported _sum total stays where it was.
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

EngineOptions opts(const std::string& dir = "") {
  EngineOptions o;
  o.fsync = false;
  o.interval = std::chrono::milliseconds(kIv);
  o.grace = std::chrono::milliseconds(0);
  o.state_dir = dir;
  return o;
}

// A prometheus_client histogram's cumulative state in one process.
struct Hist {
  Distribution d;
  Hist() {
    d.form = Distribution::Form::Buckets;
    d.bucket_upper_bounds = {0.01, 0.1, INFINITY};
    d.bucket_counts = {0, 0, 0};
  }
  void observe(size_t bucket, double v, int n) {
    d.bucket_counts[bucket] += n;
    d.count += n;
    d.sum += v * n;
  }
};

std::optional<double> app(const std::vector<IntervalOutput>& out, int64_t k, const char* stat) {
  return point(out, S0 + k, Level::App, "lat", stat);
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// The value of an exported series line `name{app="web",level="app"}`, NaN if absent.
double exported(const std::string& text, const std::string& name) {
  const std::string head = name + "{app=\"web\",level=\"app\"} ";
  size_t at = text.find(head);
  return at == std::string::npos ? std::nan("") : std::stod(text.substr(at + head.size()));
}

TEST(EngineSumUnknown, CountAndQuantilesFlowNoSumOrMeanAndTheSumTotalStays) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  PrometheusSink sink;
  Hist w[2];
  std::vector<IntervalOutput> out;
  for (int k = 0; k < 5; ++k) {
    for (Hist& h : w) h.observe(k < 3 ? 0 : 1, k < 3 ? 0.005 : 0.05, 100 + k);
    std::vector<Sample> second{dist("lat", w[1].d, T0 + k * kIv + 500)};
    if (k >= 2) {  // worker 2 observed NaN once: its _sum is unknown from then on
      Distribution d = w[1].d;
      d.set_sum_or_unknown(std::nan(""));
      second = {dist("lat", d, T0 + k * kIv + 500)};
    }
    int64_t now = T0 + k * kIv + 500;
    e.ingest(batch("a", k + 1,
                   {source(1, {dist("lat", w[0].d, now)}, true), source(2, second, true)}),
             now);
    for (auto& o : e.flush(now + kIv)) {
      sink.emit(o);
      out.push_back(std::move(o));
    }
    if (k == 1) {
      std::string text = sink.scrape();
      EXPECT_EQ(exported(text, "statherd_lat_count"), 402) << text;
      EXPECT_NEAR(exported(text, "statherd_lat_sum"), 2.01, 1e-9) << text;
    }
  }
  for (int k = 0; k < 5; ++k) EXPECT_EQ(app(out, k, "count"), 2.0 * (100 + k)) << "interval " << k;
  EXPECT_NEAR(*app(out, 1, "sum"), 2 * 101 * 0.005, 1e-9);
  EXPECT_TRUE(app(out, 1, "mean").has_value());
  for (int k = 2; k < 5; ++k) {
    EXPECT_FALSE(app(out, k, "sum").has_value()) << "interval " << k;
    EXPECT_FALSE(app(out, k, "mean").has_value()) << "interval " << k;
    ASSERT_TRUE(app(out, k, "p50").has_value()) << "interval " << k;
  }
  EXPECT_LE(*app(out, 2, "p50"), 0.01);
  EXPECT_GT(*app(out, 4, "p50"), 0.01);  // the shift to 0.05 shows
  // /metrics: _count keeps counting every observation; _sum stays at the last known total.
  std::string text = sink.scrape();
  EXPECT_EQ(exported(text, "statherd_lat_count"), 1020) << text;
  EXPECT_NEAR(exported(text, "statherd_lat_sum"), 2.01, 1e-9) << text;
  EXPECT_FALSE(contains(text, "NaN")) << text;
}

// The previous state's unknown sum survives a clean stop (snapshot) and a crash (WAL replay):
// the next interval of that process still has no sum, even when its new state has one.
TEST(EngineSumUnknown, ThePreviousStatesFlagSurvivesSnapshotAndWal) {
  for (bool clean : {true, false}) {
    TempDir dir;
    Hist h;
    h.observe(0, 0.005, 100);
    Distribution unknown = h.d;
    unknown.set_sum_or_unknown(INFINITY);
    {
      Engine first(opts(dir.path));
      ASSERT_TRUE(first.open(T0).ok());
      first.ingest(batch("a", 1, {source(1, {dist("lat", unknown, T0 + 100)}, true)}), T0 + 100);
      if (clean) first.drain(T0 + 2 * kIv);
    }
    Engine second(opts(dir.path));
    ASSERT_TRUE(second.open(T0 + 2 * kIv).ok());
    h.observe(1, 0.05, 40);  // a known sum again: the difference from an unknown one is unknown
    second.ingest(batch("a", 2, {source(1, {dist("lat", h.d, T0 + 2 * kIv + 100)})}),
                  T0 + 2 * kIv + 100);
    auto out = second.flush(T0 + 4 * kIv);
    EXPECT_EQ(app(out, 2, "count"), 40.0) << (clean ? "snapshot" : "wal");
    EXPECT_FALSE(app(out, 2, "sum").has_value()) << (clean ? "snapshot" : "wal");
    EXPECT_FALSE(app(out, 2, "mean").has_value()) << (clean ? "snapshot" : "wal");
  }
}

}  // namespace
}  // namespace statherd::server
