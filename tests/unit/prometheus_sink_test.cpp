// PrometheusSink: names, labels, escaping, counter accumulation, summaries, expiry, limits.
#include "server/sinks/prometheus.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "server/api_routes.h"
#include "server/sinks/prometheus_self.h"
#include "prometheus_test_util.h"

namespace statherd::server {
namespace {

using testing::contains;
using testing::counter_points;
using testing::interval;
using testing::point;

TEST(PrometheusNames, SanitizesMetricAndStat) {
  EXPECT_EQ(prometheus_metric_name("db.query-time", "p99"), "statherd_db_query_time_p99");
  EXPECT_EQ(prometheus_metric_name("9 lives\n", "count_total"), "statherd_9_lives__count_total");
  EXPECT_EQ(prometheus_metric_name("a:b", ""), "statherd_a:b");
}

TEST(PrometheusNames, LabelNamesAreValidAndNeverShadowReservedOnes) {
  EXPECT_EQ(prometheus_label_name("region"), "region");
  EXPECT_EQ(prometheus_label_name("dc.zone"), "dc_zone");
  EXPECT_EQ(prometheus_label_name("host"), "tag_host");
  EXPECT_EQ(prometheus_label_name("quantile"), "tag_quantile");
  EXPECT_EQ(prometheus_label_name("__name__"), "tag___name__");
  EXPECT_EQ(prometheus_label_name("1x"), "tag_1x");
  EXPECT_EQ(prometheus_label_name(""), "tag_");
  EXPECT_EQ(prometheus_label_name("a:b"), "a_b");
}

// The sink's index key of a series is its family and labels: prometheus_series_id builds it
// without the label map, so it must give what the map gives, tags that sanitize to one label
// name (the later one wins, as in the map) and names sorting among level/app/host/pid included.
TEST(PrometheusNames, SeriesIdIsTheFamilyAndTheLabelsInNameOrder) {
  auto from_map = [](std::string_view family, const SeriesKey& key) {
    std::string out(family);
    for (const auto& [name, value] : prometheus_series_labels(key))
      out += '\x1f' + name + '=' + value;
    return out;
  };
  const std::vector<Tags> tag_sets = {
      {},
      {{"region", "eu"}},
      {{"Zone", "1"}, {"a.b", "x"}, {"a_b", "y"}, {"host", "h"}, {"tag_host", "t"}},
      {{"aa", "1"}, {"apq", "2"}, {"b", "3"}, {"i", "4"}, {"level", "5"}, {"m", "6"},
       {"pid", "7"}, {"q", "8"}, {"z", "9"}},
      {{"", "empty"}, {"1x", "digit"}, {"tag_", "clash"}, {"tag_1x", "clash2"}}};
  for (const Tags& tags : tag_sets)
    for (Level level : {Level::App, Level::Host, Level::Process}) {
      SeriesKeyRef key = make_series_key(level, "web", level == Level::App ? "" : "h1",
                                         level == Level::Process ? 4242 : -1, "jobs.done", tags);
      EXPECT_EQ(prometheus_series_id("statherd_jobs_done", *key),
                from_map("statherd_jobs_done", *key));
    }
  EXPECT_EQ(prometheus_series_id("f", *make_series_key(Level::Process, "web", "h1", 7, "m", {})),
            "f\x1f" "app=web\x1f" "host=h1\x1f" "level=process\x1f" "pid=7");
}

TEST(PrometheusNames, QuantileOfStat) {
  EXPECT_DOUBLE_EQ(*quantile_of_stat("p50"), 0.5);
  EXPECT_DOUBLE_EQ(*quantile_of_stat("p75"), 0.75);
  EXPECT_DOUBLE_EQ(*quantile_of_stat("p999"), 0.999);
  EXPECT_DOUBLE_EQ(*quantile_of_stat("p9999"), 0.9999);
  EXPECT_FALSE(quantile_of_stat("p99_max"));
  EXPECT_FALSE(quantile_of_stat("max"));
  EXPECT_FALSE(quantile_of_stat("p"));
}

TEST(PrometheusSink, CountersAccumulateAsTotalsWithLevelLabels) {
  PrometheusSink sink;
  auto first = counter_points(Level::Host, 30);
  for (auto& p : counter_points(Level::App, 30)) first.push_back(p);
  sink.emit(interval(100, first));
  sink.emit(interval(110, counter_points(Level::Host, 12)));
  std::string text = sink.scrape();
  EXPECT_TRUE(contains(text, "# TYPE statherd_http_requests_count_total counter\n")) << text;
  EXPECT_TRUE(contains(
      text, "statherd_http_requests_count_total{app=\"web\",host=\"h1\",level=\"host\"} 42\n"))
      << text;
  EXPECT_TRUE(
      contains(text, "statherd_http_requests_count_total{app=\"web\",level=\"app\"} 30\n"))
      << text;
  EXPECT_TRUE(contains(text, "# TYPE statherd_http_requests_rate gauge\n")) << text;
  EXPECT_TRUE(contains(
      text, "statherd_http_requests_rate{app=\"web\",host=\"h1\",level=\"host\"} 1.2\n"))
      << text;
  EXPECT_TRUE(contains(text, "statherd_http_requests_m1_rate{app=\"web\",level=\"app\"} 0.5\n"));
}

TEST(PrometheusSink, ReemittedIntervalAddsOnlyItsDifference) {
  PrometheusSink sink;
  sink.emit(interval(100, counter_points(Level::App, 10)));
  sink.emit(interval(110, counter_points(Level::App, 5)));
  sink.emit(interval(100, counter_points(Level::App, 14), /*reemit=*/true));  // late +4
  sink.emit(interval(100, counter_points(Level::App, 14), /*reemit=*/true));  // same again
  std::string text = sink.scrape();
  EXPECT_TRUE(
      contains(text, "statherd_http_requests_count_total{app=\"web\",level=\"app\"} 19\n"))
      << text;
  // The re-emitted, older interval does not overwrite the newer rate.
  EXPECT_TRUE(contains(text, "statherd_http_requests_rate{app=\"web\",level=\"app\"} 0.5\n"))
      << text;
}

TEST(PrometheusSink, HostileLabelValuesAreEscaped) {
  PrometheusSink sink;
  Tags tags{{"path", "a\"b\\c\nd"}, {"host", "spoof"}};
  sink.emit(interval(100, {point(Level::Host, "q.depth", "max", 7, tags)}));
  std::string text = sink.scrape();
  EXPECT_TRUE(contains(text,
                       "statherd_q_depth_max{app=\"web\",host=\"h1\",level=\"host\","
                       "path=\"a\\\"b\\\\c\\nd\",tag_host=\"spoof\"} 7\n"))
      << text;
}

TEST(PrometheusSink, DistributionsAreSummariesWithAccumulatedCountAndSum) {
  PrometheusSink sink;
  auto dist = [](double count, double sum, double p50, double p999) {
    return std::vector<SeriesPoint>{
        point(Level::App, "db.latency", "count", count), point(Level::App, "db.latency", "sum", sum),
        point(Level::App, "db.latency", "min", 1), point(Level::App, "db.latency", "max", 90),
        point(Level::App, "db.latency", "p50", p50), point(Level::App, "db.latency", "p999", p999)};
  };
  sink.emit(interval(100, dist(4, 40, 9, 80)));
  sink.emit(interval(110, dist(6, 30, 5, 70)));
  std::string text = sink.scrape();
  EXPECT_TRUE(contains(text, "# TYPE statherd_db_latency summary\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_db_latency_count{app=\"web\",level=\"app\"} 10\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_db_latency_sum{app=\"web\",level=\"app\"} 70\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_db_latency{app=\"web\",level=\"app\",quantile=\"0.5\"} 5\n"))
      << text;
  EXPECT_TRUE(
      contains(text, "statherd_db_latency{app=\"web\",level=\"app\",quantile=\"0.999\"} 70\n"))
      << text;
  EXPECT_TRUE(contains(text, "statherd_db_latency_max{app=\"web\",level=\"app\"} 90\n")) << text;
}

// Issue #15: the engine's running totals (SeriesPoint::total) are exported as they are, so a
// sink created by a restarted server continues where the old one was, re-emitted intervals
// change nothing, and a smaller total (the engine's series expired and came back) resets.
TEST(PrometheusSink, EngineTotalsAreExportedAsTheyAreAcrossRestarts) {
  auto with_total = [](std::vector<SeriesPoint> points, double count_total, double sum_total) {
    for (SeriesPoint& p : points) {
      if (p.stat == "count") p.total = count_total;
      if (p.stat == "sum") p.total = sum_total;
    }
    return points;
  };
  auto dist = [](double count, double sum) {
    return std::vector<SeriesPoint>{point(Level::App, "db.latency", "count", count),
                                    point(Level::App, "db.latency", "sum", sum),
                                    point(Level::App, "db.latency", "p50", 3)};
  };
  PrometheusSink restarted;  // the old sink had exported 500 and 40 / 12.5
  restarted.emit(interval(100, with_total(counter_points(Level::App, 30), 530, 0)));
  restarted.emit(interval(100, with_total(dist(4, 2.5), 44, 15)));
  std::string text = restarted.scrape();
  EXPECT_TRUE(contains(text, "statherd_http_requests_count_total{app=\"web\",level=\"app\"} 530\n"))
      << text;
  EXPECT_TRUE(contains(text, "statherd_db_latency_count{app=\"web\",level=\"app\"} 44\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_db_latency_sum{app=\"web\",level=\"app\"} 15\n")) << text;
  restarted.emit(interval(90, with_total(counter_points(Level::App, 35), 530, 0), true));
  restarted.emit(interval(110, with_total(counter_points(Level::App, 7), 537, 0)));
  text = restarted.scrape();
  EXPECT_TRUE(contains(text, "statherd_http_requests_count_total{app=\"web\",level=\"app\"} 537\n"))
      << text;
  restarted.emit(interval(120, with_total(counter_points(Level::App, 3), 3, 0)));
  text = restarted.scrape();
  EXPECT_TRUE(contains(text, "statherd_http_requests_count_total{app=\"web\",level=\"app\"} 3\n"))
      << text;
}

// An interval whose sum is unknown (the engine emits no "sum" point: a distribution with
// Distribution::sum_unknown) adds nothing to _sum, with or without engine totals; _count
// keeps counting, and a re-emission of an interval that had a sum does not take it back.
TEST(PrometheusSink, AnUnknownSumLeavesTheSumTotalWhereItWas) {
  auto dist = [](double count, std::optional<double> sum) {
    std::vector<SeriesPoint> p{point(Level::App, "db.latency", "count", count),
                               point(Level::App, "db.latency", "p50", 3)};
    if (sum) p.push_back(point(Level::App, "db.latency", "sum", *sum));
    return p;
  };
  PrometheusSink sink;
  sink.emit(interval(100, dist(4, 40)));
  sink.emit(interval(110, dist(6, std::nullopt)));
  sink.emit(interval(100, dist(5, std::nullopt), /*reemit=*/true));  // late: +1, sum unknown
  std::string text = sink.scrape();
  EXPECT_TRUE(contains(text, "statherd_db_latency_count{app=\"web\",level=\"app\"} 11\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_db_latency_sum{app=\"web\",level=\"app\"} 40\n")) << text;
  sink.emit(interval(120, dist(2, 7)));
  text = sink.scrape();
  EXPECT_TRUE(contains(text, "statherd_db_latency_sum{app=\"web\",level=\"app\"} 47\n")) << text;

  PrometheusSink totals;  // engine totals: the count point carries one, no sum point at all
  auto with_count_total = [](std::vector<SeriesPoint> p, double total) {
    for (SeriesPoint& x : p)
      if (x.stat == "count" || x.stat == "sum") x.total = x.stat == "count" ? total : 12.5;
    return p;
  };
  totals.emit(interval(100, with_count_total(dist(4, 12.5), 4)));
  totals.emit(interval(110, with_count_total(dist(6, std::nullopt), 10)));
  text = totals.scrape();
  EXPECT_TRUE(contains(text, "statherd_db_latency_count{app=\"web\",level=\"app\"} 10\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_db_latency_sum{app=\"web\",level=\"app\"} 12.5\n")) << text;
}

TEST(PrometheusSink, GaugeStatsAreGauges) {
  PrometheusSink sink;
  sink.emit(interval(100, {point(Level::App, "queue.depth", "max", 11),
                           point(Level::App, "queue.depth", "sum", 21),
                           point(Level::App, "queue.depth", "p99", 11)}));
  std::string text = sink.scrape();
  EXPECT_TRUE(contains(text, "statherd_queue_depth_summed{app=\"web\",level=\"app\"} 21\n"))
      << text;
  EXPECT_TRUE(contains(text, "statherd_queue_depth_p99{app=\"web\",level=\"app\"} 11\n")) << text;
}

TEST(PrometheusSink, IdleSeriesExpireAfterTheirIntervals) {
  PrometheusSink sink(PrometheusSinkOptions{.expire_intervals = 2});
  sink.emit(interval(100, {point(Level::App, "old.gauge", "max", 1),
                           point(Level::App, "dist", "count", 1)}));
  sink.emit(interval(110, counter_points(Level::App, 1)));
  sink.emit(interval(120, counter_points(Level::App, 1)));
  EXPECT_TRUE(contains(sink.scrape(), "statherd_old_gauge_max"));
  sink.emit(interval(130, counter_points(Level::App, 1)));
  std::string text = sink.scrape();
  EXPECT_FALSE(contains(text, "old_gauge")) << text;
  EXPECT_FALSE(contains(text, "statherd_dist")) << text;
  EXPECT_TRUE(contains(text, "statherd_http_requests_count_total{app=\"web\",level=\"app\"} 3\n"));
  EXPECT_EQ(sink.counters().series_expired, 2u);
  EXPECT_EQ(sink.counters().series, 3u);
}

// Expiry walks lists of series by interval start; a new start's list reuses the buffer of the
// list expiry dropped last. Over many intervals, with re-emitted (older) starts in between (one
// whose list is still kept, one whose list expiry already dropped), and the interval's new
// series first in its records (listed under INT64_MIN until their first update), each series
// that appears once expires exactly once, after its intervals, and the one that keeps coming
// stays.
TEST(PrometheusSink, SeriesComingAndGoingExpireOnceEachAcrossManyIntervals) {
  PrometheusSink sink(PrometheusSinkOptions{.expire_intervals = 2});
  constexpr int kIntervals = 30;
  for (int i = 0; i < kIntervals; ++i) {
    const int64_t start = 100 + 10 * i;
    std::vector<SeriesPoint> points;
    for (int k = 0; k <= i % 4; ++k)  // lists of changing lengths, the new series first
      points.push_back(point(Level::App, "g" + std::to_string(i) + "_" + std::to_string(k), "max", i));
    for (const SeriesPoint& p : counter_points(Level::App, 1)) points.push_back(p);
    sink.emit(interval(start, points));
    if (i % 7 == 6)  // late data for the interval before: listed under that older start
      sink.emit(interval(start - 10, counter_points(Level::App, 2), /*reemit=*/true));
    if (i % 9 == 8)  // late data for an interval whose list expiry has dropped
      sink.emit(interval(start - 50, counter_points(Level::App, 3), /*reemit=*/true));
    const std::string text = sink.scrape();
    for (int j = 0; j <= i; ++j) {
      const std::string name = "statherd_g" + std::to_string(j) + "_0_max";
      EXPECT_EQ(contains(text, name), j >= i - 2) << "interval " << i << ", " << name;
    }
  }
  uint64_t made = 0;
  for (int i = 0; i < kIntervals; ++i) made += i % 4 + 1;
  uint64_t kept = 0;
  for (int i = kIntervals - 3; i < kIntervals; ++i) kept += i % 4 + 1;
  EXPECT_EQ(sink.counters().series_expired, made - kept);
  EXPECT_TRUE(contains(sink.scrape(), "statherd_http_requests_count_total{app=\"web\",level=\"app\"} "));
}

TEST(PrometheusSink, NewSeriesBeyondTheLimitAreRefusedAndCounted) {
  PrometheusSink sink(PrometheusSinkOptions{.max_series = 2});
  sink.emit(interval(100, {point(Level::App, "a", "max", 1), point(Level::App, "b", "max", 2),
                           point(Level::App, "c", "max", 3)}));
  EXPECT_EQ(sink.counters().series, 2u);
  EXPECT_EQ(sink.counters().series_rejected, 1u);
  EXPECT_FALSE(contains(sink.scrape(), "statherd_c_max"));
}

TEST(ServerSelfMetrics, ExposesEngineAndSinkCounters) {
  ServerSelfMetrics self;
  ServerSelfValues values;
  values.engine.batches = 5;
  values.engine.wal_bytes = 4096;
  self.update(values);
  values.engine.batches = 8;
  values.graphite = GraphiteSink::Counters{};
  values.graphite->lines_dropped = 3;
  self.update(values);
  PrometheusSink sink;
  std::string text = sink.scrape(self.collect());
  EXPECT_TRUE(contains(text, "statherd_server_batches_total 8\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_server_wal_bytes 4096\n")) << text;
  EXPECT_TRUE(contains(text, "statherd_server_graphite_lines_dropped_total 3\n")) << text;
  EXPECT_FALSE(contains(text, "remote_write")) << "no remote_write sink, no series\n" << text;
}

TEST(ServerSelfMetrics, ExposesEveryGraphiteCounter) {
  ServerSelfMetrics self;
  ServerSelfValues values;
  values.graphite = GraphiteSink::Counters{.lines_queued = 11, .lines_sent = 7, .lines_dropped = 2,
                                           .lines_delayed = 5, .non_finite_skipped = 4,
                                           .connects = 3, .connect_failures = 6,
                                           .write_failures = 1, .queue_depth = 9,
                                           .lines_filtered = 8};
  self.update(values);
  std::string text = PrometheusSink().scrape(self.collect());
  for (const char* line : {"graphite_lines_queued_total 11\n", "graphite_lines_sent_total 7\n",
                           "graphite_lines_dropped_total 2\n", "graphite_lines_delayed_total 5\n",
                           "graphite_non_finite_skipped_total 4\n", "graphite_connects_total 3\n",
                           "graphite_connect_failures_total 6\n",
                           "graphite_write_failures_total 1\n", "graphite_queue_depth 9\n",
                           "graphite_lines_filtered_total 8\n"}) {
    EXPECT_TRUE(contains(text, std::string("\nstatherd_server_") + line)) << line << text;
  }
}

TEST(ServerSelfMetrics, ExposesRemoteWriteCountersAndGauges) {
  ServerSelfMetrics self;
  ServerSelfValues values;
  values.remote_write = RemoteWriteSink::Counters{};
  values.remote_write->samples_queued = 100;
  values.remote_write->queue_depth = 40;
  values.remote_write->samples_in_flight = 10;
  self.update(values);
  RemoteWriteSink::Counters& rw = *values.remote_write;
  rw = {.samples_queued = 120, .samples_sent = 50, .samples_dropped = 30, .samples_rejected = 2,
        .requests = 9, .request_failures = 6, .retries = 5, .reemits_skipped = 1,
        .queue_depth = 25, .samples_in_flight = 13, .last_status = 503};
  self.update(values);
  std::string text = PrometheusSink().scrape(self.collect());
  for (const char* line :
       {"remote_write_samples_queued_total 120\n", "remote_write_samples_sent_total 50\n",
        "remote_write_samples_dropped_total 30\n", "remote_write_samples_rejected_total 2\n",
        "remote_write_requests_total 9\n", "remote_write_request_failures_total 6\n",
        "remote_write_retries_total 5\n", "remote_write_reemits_skipped_total 1\n",
        "remote_write_queue_depth 25\n", "remote_write_samples_in_flight 13\n",
        "remote_write_last_status 503\n"}) {
    EXPECT_TRUE(contains(text, std::string("\nstatherd_server_") + line)) << line << text;
  }
  EXPECT_TRUE(contains(text, "# TYPE statherd_server_remote_write_samples_dropped_total counter\n"))
      << text;
  EXPECT_TRUE(contains(text, "# TYPE statherd_server_remote_write_queue_depth gauge\n")) << text;
  EXPECT_TRUE(contains(text, "# HELP statherd_server_remote_write_samples_dropped_total "))
      << text;
}

TEST(ServerSelfMetrics, ExposesRemoteWriteRejectionsByReasonAndSkippedSamples) {
  ServerSelfMetrics self;
  ServerSelfValues values;
  values.remote_write = RemoteWriteSink::Counters{};
  RemoteWriteSink::Counters& rw = *values.remote_write;
  rw.samples_rejected = 7;
  rw.rejected_by_reason[static_cast<int>(RwReject::OutOfOrder)] = 5;
  rw.rejected_by_reason[static_cast<int>(RwReject::Other)] = 2;
  rw.samples_skipped = 192;
  rw.batch_splits = 3;
  self.update(values);
  std::string text = PrometheusSink().scrape(self.collect());
  for (const char* line :
       {"remote_write_rejected_samples_total{reason=\"out_of_order\"} 5\n",
        "remote_write_rejected_samples_total{reason=\"duplicate\"} 0\n",
        "remote_write_rejected_samples_total{reason=\"out_of_bounds\"} 0\n",
        "remote_write_rejected_samples_total{reason=\"other\"} 2\n",
        "remote_write_samples_skipped_total 192\n", "remote_write_batch_splits_total 3\n"}) {
    EXPECT_TRUE(contains(text, std::string("\nstatherd_server_") + line)) << line << text;
  }
}

TEST(PrometheusSink, TheTextIsRenderedOncePerEmitAndSharedBetweenScrapes) {
  PrometheusSink sink;
  sink.emit(interval(100, {point(Level::App, "a", "max", 1)}));
  auto first = sink.shared_text();
  auto again = sink.shared_text();
  EXPECT_EQ(first, again);  // one copy for every scrape of this interval
  EXPECT_TRUE(contains(*first, "statherd_a_max{app=\"web\",level=\"app\"} 1\n")) << *first;
  sink.emit(interval(110, {point(Level::App, "a", "max", 2)}));
  auto next = sink.shared_text();
  EXPECT_NE(next, first);
  EXPECT_TRUE(contains(*next, "statherd_a_max{app=\"web\",level=\"app\"} 2\n")) << *next;
  EXPECT_TRUE(contains(*first, "} 1\n"));  // an answer still being written keeps its text
  EXPECT_EQ(sink.scrape(), *next);
}

TEST(PrometheusRoute, GetMetricsServesTheScrapeAsTextWithoutAToken) {
  Engine engine(EngineOptions{});
  MemoryStore store(MemoryStoreOptions{});
  IngestToken token("secret");
  auto now = [] { return int64_t{1'000'000}; };
  ApiRoutes off(token, engine, store, now);
  EXPECT_EQ(off.handle({"GET", "/metrics", "", ""}).status, 404);  // not enabled
  PrometheusSink sink;
  sink.emit(interval(100, {point(Level::App, "a", "max", 1)}));
  ApiRoutesOptions options;
  options.prometheus_scrape = scrape_from_text([&] { return sink.scrape(); });
  ApiRoutes routes(token, engine, store, now, std::move(options));
  ApiResponse r = routes.handle({"GET", "/metrics", "", ""});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE(contains(r.body, "statherd_a_max{app=\"web\",level=\"app\"} 1\n")) << r.body;
  EXPECT_EQ(routes.handle({"POST", "/metrics", "", ""}).status, 405);
}

}  // namespace
}  // namespace statherd::server
