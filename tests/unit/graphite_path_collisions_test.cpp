// Distinct series that sanitize to one Graphite path are reported (log + self-metric), once:
// checked when a path enters the Graphite sink's per-series cache, released when the series'
// entry is dropped (its key went idle).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include "server/sinks/graphite.h"
#include "server/sinks/graphite_cache.h"
#include "server/sinks/graphite_naming.h"
#include "rollup_test_util.h"

namespace statherd::server {
namespace {

SeriesPoint point(const std::string& app, const std::string& metric, const std::string& stat) {
  SeriesPoint p;
  p.app = app;
  p.metric = metric;
  p.stat = stat;
  p.value = 1;
  return p;
}

// One interval through the cache as GraphiteSink::emit() walks it; the collisions it reported.
uint64_t pass(GraphiteSeriesCache& cache, const std::vector<SeriesPoint>& points) {
  IntervalOutput out = testing::output_of(1000, 10, points);
  const uint64_t before = cache.collisions();
  cache.begin_emit();
  for (const RollupRecord& record : out.records) {
    GraphiteSeries& series = cache.series(record.key, record.kind);
    const auto stats = out.stats_of(record);
    for (size_t i = 0; i < stats.size(); ++i) cache.slot(series, i, stats[i].name);
  }
  cache.end_emit();
  return cache.collisions() - before;
}

TEST(PathCollisions, DistinctSeriesWithOnePathAreReportedOnce) {
  std::vector<SeriesPoint> points = {point("a.p.p", "req", "count"), point("a_p_p", "req", "count"),
                                     point("web", "req time", "count"),
                                     point("web", "req_time", "count"),
                                     point("web", "req_time", "rate")};
  GraphiteSeriesCache c;
  for (int interval = 0; interval < 3; ++interval) {
    EXPECT_EQ(graphite_path(points[0], "statherd"), graphite_path(points[1], "statherd"));
    EXPECT_EQ(pass(c, points), interval == 0 ? 2u : 0u) << "interval " << interval;
  }
  EXPECT_EQ(c.collisions(), 2u);
}

TEST(PathCollisions, TheSameSeriesTwiceIsNoCollision) {
  GraphiteSeriesCache c;
  SeriesPoint p = point("web", "req", "count");
  EXPECT_EQ(pass(c, {p, p}), 0u);
  EXPECT_EQ(c.collisions(), 0u);
}

TEST(PathCollisions, OneSeriesWithTwoStatNamesOfOnePathCollides) {
  GraphiteSeriesCache c;
  EXPECT_EQ(pass(c, {point("web", "req", "p99.9"), point("web", "req", "p99_9")}), 1u);
}

TEST(PathCollisions, DifferentStatsUnderOneSeriesPathAreNoCollision) {
  GraphiteSeriesCache c;  // statherd.web.req_time.count and statherd.web.req_time.min
  EXPECT_EQ(pass(c, {point("web", "req time", "count"), point("web", "req_time", "min")}), 0u);
}

// A series still live (seen within the cache's idle window) owns its paths; once its entry is
// dropped, another series may take the same path without a collision.
TEST(PathCollisions, APathIsOwnedWhileItsSeriesIsLiveAndFreedAfter) {
  using Cache = SeriesCache<GraphiteSeries>;
  GraphiteSeriesCache c;
  EXPECT_EQ(pass(c, {point("a.p.p", "req", "count")}), 0u);
  EXPECT_EQ(pass(c, {point("api", "x", "count")}), 0u);
  EXPECT_EQ(c.size(), 2u);
  for (uint64_t i = 0; i < Cache::kIdleEmits + Cache::kSweepEvery; ++i)
    EXPECT_EQ(pass(c, {point("api", "x", "count")}), 0u);
  EXPECT_EQ(c.size(), 1u);  // a.p.p's entry went: its key was idle
  EXPECT_EQ(pass(c, {point("a_p_p", "req", "count")}), 0u);
  // Live a_p_p now owns the path: a series taking it meanwhile collides.
  EXPECT_EQ(pass(c, {point("a:p:p", "req", "count")}), 1u);
  EXPECT_EQ(c.collisions(), 1u);
}

TEST(PathCollisions, AFirstHolderLeavingKeepsTheOthersOwnership) {
  using Cache = SeriesCache<GraphiteSeries>;
  GraphiteSeriesCache c;
  EXPECT_EQ(pass(c, {point("a.p.p", "req", "count"), point("a_p_p", "req", "min")}), 0u);
  for (uint64_t i = 0; i < Cache::kIdleEmits + Cache::kSweepEvery; ++i)
    EXPECT_EQ(pass(c, {point("a_p_p", "req", "min")}), 0u);
  EXPECT_EQ(c.size(), 1u);  // the first holder (a.p.p) left; a_p_p still holds the path
  EXPECT_EQ(pass(c, {point("a:p:p", "req", "min")}), 1u);
}

// A Graphite sink writing to /dev/null, stopped (then the file closed) at the end of a test.
class NullGraphite {
 public:
  NullGraphite() : fd_(::open("/dev/null", O_WRONLY | O_CLOEXEC)), sink_(options(fd_)) {}
  ~NullGraphite() {
    sink_.stop();
    ::close(fd_);
  }
  GraphiteSink& sink() { return sink_; }

 private:
  static GraphiteSinkOptions options(int fd) {
    GraphiteSinkOptions o;
    o.address = "-";
    o.stdout_fd = fd;
    return o;
  }
  int fd_;
  GraphiteSink sink_;
};

TEST(PathCollisions, TheGraphiteSinkCountsThem) {
  NullGraphite null;
  GraphiteSink& sink = null.sink();
  for (int64_t t = 0; t < 3; ++t) {
    IntervalOutput out = testing::output_of(1000 + 10 * t, 10,
                                            {point("a.p.p", "req", "count"),
                                             point("a_p_p", "req", "count"),
                                             point("api", "x", "count")});
    sink.emit(out);
  }
  EXPECT_EQ(sink.counters().path_collisions, 1u);
}

// One metric name, two kinds (a distribution on one host, a gauge on another): the engine keeps
// two app-level series with equal names, and both write statherd.web.lat.min. Not one series
// under two keys: a collision (hostile review: Carbon silently kept one of two values).
TEST(PathCollisions, OneNameOfTwoKindsCollides) {
  NullGraphite null;
  GraphiteSink& sink = null.sink();
  SeriesKeyRef dist = make_series_key(Level::App, "web", "", -1, "lat", {});
  SeriesKeyRef gauge = make_series_key(Level::App, "web", "", -1, "lat", {});
  for (int64_t t = 0; t < 2; ++t) {
    IntervalOutput out;
    out.start_s = 1000 + 10 * t;
    out.add(dist, SeriesKind::Distribution).count_total = 3;
    out.stat("count", 1);
    out.stat("min", 1);
    out.add(gauge, SeriesKind::Gauge);
    out.stat("min", 1001);
    sink.emit(out);
  }
  EXPECT_EQ(sink.counters().path_collisions, 1u);
}

}  // namespace
}  // namespace statherd::server
