// PrometheusSink and rollup records: the kind comes from the record, and the per-key cache
// (server/sinks/prometheus.h) never reaches a removed series, retries refusals and counts them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "prometheus_test_util.h"
#include "server/sinks/prometheus.h"

namespace statherd::server {
namespace {

using testing::contains;
using testing::counter_points;
using testing::interval;
using testing::point;

// The kind comes from the record, not from the stat names: a counter whose record has no
// "rate" stat (an EWMA-only re-emission, a future source) is still a counter, and a gauge with
// a stat named "count" stays a gauge. (Guessed from names, the first was a summary.)
TEST(PrometheusSink, TheRecordKindDecidesNotTheStatNames) {
  IntervalOutput out;
  out.start_s = 100;
  out.interval_s = 10;
  out.add(make_series_key(Level::App, "web", "", -1, "jobs.done", {}), SeriesKind::Counter)
      .count_total = 40;
  out.stat("count", 4);
  out.stat("m1_rate", 0.25);
  out.add(make_series_key(Level::App, "web", "", -1, "pool", {}), SeriesKind::Gauge);
  out.stat("count", 3);
  out.stat("sum", 9);
  PrometheusSink sink;
  sink.emit(out);
  std::string text = sink.scrape();
  EXPECT_TRUE(contains(text, "# TYPE statherd_jobs_done_count_total counter\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_jobs_done_count_total{app=\"web\",level=\"app\"} 40\n"))
      << text;
  EXPECT_TRUE(contains(text, "statherd_jobs_done_m1_rate{app=\"web\",level=\"app\"} 0.25\n"))
      << text;
  EXPECT_FALSE(contains(text, "# TYPE statherd_jobs_done summary")) << text;
  EXPECT_TRUE(contains(text, "# TYPE statherd_pool_count gauge\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_pool_count{app=\"web\",level=\"app\"} 3\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_pool_summed{app=\"web\",level=\"app\"} 9\n")) << text;
}

// The per-key cache must never reach a Series that expiry removed: here the key stays in use
// (its other stat keeps coming) while its "max" series expires, then "max" comes back.
TEST(PrometheusSink, AStatWhoseSeriesExpiredComesBackUnderTheSameKey) {
  PrometheusSink sink(PrometheusSinkOptions{.expire_intervals = 2});
  sink.emit(interval(100, {point(Level::App, "q", "max", 1), point(Level::App, "q", "min", 0)}));
  for (int64_t t : {110, 120, 130}) sink.emit(interval(t, {point(Level::App, "q", "min", 0)}));
  EXPECT_FALSE(contains(sink.scrape(), "statherd_q_max"));
  EXPECT_EQ(sink.counters().series_expired, 1u);
  sink.emit(interval(140, {point(Level::App, "q", "max", 7), point(Level::App, "q", "min", 2)}));
  std::string text = sink.scrape();
  EXPECT_TRUE(contains(text, "statherd_q_max{app=\"web\",level=\"app\"} 7\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_q_min{app=\"web\",level=\"app\"} 2\n")) << text;
  EXPECT_EQ(sink.counters().series, 2u);
  // The whole key idle past expiry, then back: its series are made anew.
  for (int64_t t : {150, 160, 170}) sink.emit(interval(t, {point(Level::App, "other", "max", 1)}));
  EXPECT_FALSE(contains(sink.scrape(), "statherd_q_"));
  sink.emit(interval(180, {point(Level::App, "q", "max", 8)}));
  EXPECT_TRUE(contains(sink.scrape(), "statherd_q_max{app=\"web\",level=\"app\"} 8\n"));
}

// Expiry looks only at the series listed under old interval starts; a series listed under
// several (updated in several intervals) is removed once, and a re-emission of an old interval
// does not keep an idle series alive.
TEST(PrometheusSink, ASeriesUpdatedInManyIntervalsExpiresOnceAndAReemissionDoesNotRevive) {
  PrometheusSink sink(PrometheusSinkOptions{.expire_intervals = 2});
  for (int64_t t : {100, 110})
    sink.emit(interval(t, {point(Level::App, "x", "max", static_cast<double>(t)),
                           point(Level::App, "y", "max", 1)}));
  IntervalOutput late = interval(100, {point(Level::App, "x", "max", 5)});
  late.reemit = true;
  sink.emit(late);
  // A gap: 120-190 never came. x, listed under 100 and 110, both expired now, goes once.
  sink.emit(interval(200, {point(Level::App, "y", "max", 3)}));
  std::string text = sink.scrape();
  EXPECT_FALSE(contains(text, "statherd_x_max")) << text;
  EXPECT_TRUE(contains(text, "statherd_y_max{app=\"web\",level=\"app\"} 3\n")) << text;
  EXPECT_EQ(sink.counters().series_expired, 1u);
  EXPECT_EQ(sink.counters().series, 1u);
  for (int64_t t : {210, 220, 230, 240}) sink.emit(interval(t, {point(Level::App, "y", "max", 4)}));
  EXPECT_EQ(sink.counters().series_expired, 1u);  // y, updated every interval, stays
  EXPECT_TRUE(contains(sink.scrape(), "statherd_y_max{app=\"web\",level=\"app\"} 4\n"));
  sink.emit(interval(250, {point(Level::App, "x", "max", 9)}));  // x back: made anew
  EXPECT_TRUE(contains(sink.scrape(), "statherd_x_max{app=\"web\",level=\"app\"} 9\n"));
}

// A refused series is not cached: it is counted again each interval and made once there is room.
TEST(PrometheusSink, ARefusedSeriesIsRetriedEachInterval) {
  PrometheusSink sink(PrometheusSinkOptions{.max_series = 1, .expire_intervals = 1});
  sink.emit(interval(100, {point(Level::App, "a", "max", 1), point(Level::App, "b", "max", 2)}));
  sink.emit(interval(110, {point(Level::App, "b", "max", 3)}));
  sink.emit(interval(120, {point(Level::App, "b", "max", 4)}));  // "a" expires after this one
  EXPECT_EQ(sink.counters().series_rejected, 3u);
  sink.emit(interval(130, {point(Level::App, "b", "max", 5)}));
  std::string text = sink.scrape();
  EXPECT_TRUE(contains(text, "statherd_b_max{app=\"web\",level=\"app\"} 5\n")) << text;
  EXPECT_FALSE(contains(text, "statherd_a_max")) << text;
  EXPECT_EQ(sink.counters().series_rejected, 3u);
}

// A name taken by another type is refused and counted every interval, until the other expires.
TEST(PrometheusSink, ATypeConflictIsCountedEachIntervalUntilTheNameIsFree) {
  PrometheusSink sink(PrometheusSinkOptions{.expire_intervals = 1});
  auto both = [](int64_t t, bool gauge) {
    std::vector<SeriesPoint> p = counter_points(Level::App, 10);
    if (gauge) p.insert(p.begin(), point(Level::App, "http.requests", "count_total", 5));
    return interval(t, p);
  };
  sink.emit(both(100, true));   // the gauge takes the name first
  sink.emit(both(110, false));
  EXPECT_EQ(sink.counters().type_conflicts, 2u);
  sink.emit(both(120, false));  // counted, then the gauge expires
  EXPECT_EQ(sink.counters().type_conflicts, 3u);
  sink.emit(both(130, false));
  EXPECT_EQ(sink.counters().type_conflicts, 3u);
  std::string text = sink.scrape();
  EXPECT_TRUE(contains(text, "# TYPE statherd_http_requests_count_total counter\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_http_requests_count_total{app=\"web\",level=\"app\"} 10\n"))
      << text;
}

// A summary `statherd_d` also writes `statherd_d_count` and `statherd_d_sum`: a distribution
// named "d.count" (or "d.sum") must not make a family of that name, in either order: a second
// HELP for one name makes strict parsers (promtool, Go's expfmt) refuse the whole page
// (hostile review). The later one is refused and counted as a type conflict.
TEST(PrometheusSink, NoFamilyTakesTheNameOfASummarysCountOrSum) {
  auto dist = [](const std::string& metric) {
    return std::vector<SeriesPoint>{point(Level::App, metric, "count", 4),
                                    point(Level::App, metric, "sum", 2),
                                    point(Level::App, metric, "p50", 0.5)};
  };
  for (bool summary_first : {true, false}) {
    SCOPED_TRACE(summary_first ? "d first" : "d.count first");
    PrometheusSink sink;
    std::vector<SeriesPoint> points = dist(summary_first ? "d" : "d.count");
    for (const SeriesPoint& p : dist(summary_first ? "d.count" : "d")) points.push_back(p);
    for (const SeriesPoint& p : dist("d.sum")) points.push_back(p);
    sink.emit(interval(100, points));
    const std::string text = sink.scrape();
    auto count = [&](const std::string& line) {
      size_t n = 0;
      for (size_t at = text.find(line); at != std::string::npos; at = text.find(line, at + 1)) ++n;
      return n;
    };
    EXPECT_EQ(count("# TYPE statherd_d summary\n") + count("# TYPE statherd_d_count summary\n"),
              1u) << text;
    // With "d" refused (d.count came first), "d.sum" is a summary of its own: no clash.
    EXPECT_EQ(count("# TYPE statherd_d_sum "), summary_first ? 0u : 1u) << text;
    EXPECT_GE(sink.counters().type_conflicts, summary_first ? 2u : 1u);
  }
}

// A family's series are a list of ids: one leaving from the middle hands its place to the last,
// a new series reuses its id, two metric names that sanitize alike stay one series, and the page
// lists a family's series by their labels whatever the order they came in.
TEST(PrometheusSink, SeriesLeaveAFamilyFromTheMiddleAndNewOnesReuseTheirPlace) {
  PrometheusSink sink(PrometheusSinkOptions{.expire_intervals = 2});
  auto on = [](std::string host, double v, std::string metric = "g") {
    SeriesPoint p = point(Level::Host, std::move(metric), "max", v);
    p.host = std::move(host);
    return p;
  };
  sink.emit(interval(100, {on("h3", 3), on("h1", 1), on("h2", 2)}));
  for (int64_t t : {110, 120, 130})
    sink.emit(interval(t, {on("h3", double(t) + 3), on("h2", double(t) + 2)}));
  EXPECT_EQ(sink.counters().series_expired, 1u);
  sink.emit(interval(140, {on("h0", 40), on("h3", 43), on("h2", 42), on("h4", 44, "g.")}));
  const std::string text = sink.scrape();
  const std::string family = "# TYPE statherd_g_max gauge\n"
                             "statherd_g_max{app=\"web\",host=\"h0\",level=\"host\"} 40\n"
                             "statherd_g_max{app=\"web\",host=\"h2\",level=\"host\"} 42\n"
                             "statherd_g_max{app=\"web\",host=\"h3\",level=\"host\"} 43\n";
  EXPECT_TRUE(contains(text, family)) << text;
  EXPECT_FALSE(contains(text, "h1")) << text;
  EXPECT_EQ(sink.counters().series, 4u);
  // "g." and "g_" sanitize alike: the second key finds the first one's series.
  sink.emit(interval(150, {on("h4", 45, "g_"), on("h0", 50), on("h3", 53), on("h2", 52)}));
  EXPECT_TRUE(contains(sink.scrape(),
                       "statherd_g__max{app=\"web\",host=\"h4\",level=\"host\"} 45\n"));
  EXPECT_EQ(sink.counters().series, 4u);
  // h2 moved when h1 left: it must leave from where it is now.
  for (int64_t t : {160, 170, 180}) sink.emit(interval(t, {on("h3", 1), on("h0", 2)}));
  EXPECT_EQ(sink.counters().series, 2u);
  const std::string last = sink.scrape();
  EXPECT_TRUE(contains(last, "# TYPE statherd_g_max gauge\n"
                             "statherd_g_max{app=\"web\",host=\"h0\",level=\"host\"} 2\n"
                             "statherd_g_max{app=\"web\",host=\"h3\",level=\"host\"} 1\n"))
      << last;
  EXPECT_FALSE(contains(last, "h2")) << last;
}

}  // namespace
}  // namespace statherd::server
