// Remote write: protobuf encoding (decoded back by an independent decoder), snappy round trip,
// sorted labels, names as /metrics, retry classification, the queue bound and drop counter, and
// a loopback receiver that answers 503 then 204 (retried) or 400 (dropped).
#include "server/sinks/remote_write.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <snappy.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "remote_write_test_util.h"
#include "server/server_config.h"
#include "rollup_test_util.h"

namespace statherd::server {
namespace {

using namespace testing;

TEST(RemoteWriteProto, EncodesAndDecodesBack) {
  std::vector<RwSeries> in = {
      series({{"__name__", "statherd_x_count_total"}, {"app", "web"}, {"level", "app"}},
             {{42.5, 1'700'000'000'000}, {-1e300, 1'700'000'010'000}}),
      series({{"__name__", "b"}, {"k", std::string(300, 'v')}}, {{0.0, 0}})};
  const std::string bytes = encode_write_request(in);
  const auto out = decode_write_request(bytes);
  ASSERT_EQ(out.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out[i].labels, in[i].labels);
    EXPECT_EQ(out[i].samples, in[i].samples);
  }
  // Known bytes for a minimal series: one label a=b, one sample 1.0 @ 1.
  const std::string tiny = encode_write_request({series({{"a", "b"}}, {{1.0, 1}})});
  const std::string expected("\x0a\x15\x0a\x06\x0a\x01" "a" "\x12\x01" "b"
                             "\x12\x0b\x09\x00\x00\x00\x00\x00\x00\xf0\x3f\x10\x01", 23);
  EXPECT_EQ(tiny, expected);
}

TEST(RemoteWriteProto, SnappyBlockRoundTrip) {
  const std::string raw = encode_write_request(
      {series({{"__name__", "statherd_requests_rate"}}, {{3.25, 1'700'000'000'000}})}) +
                          std::string(10'000, 'a');
  const std::string packed = snappy_block_compress(raw);
  EXPECT_LT(packed.size(), raw.size());
  std::string back;
  ASSERT_TRUE(snappy::Uncompress(packed.data(), packed.size(), &back));
  EXPECT_EQ(back, raw);
}

TEST(RemoteWriteProto, SortsLabelsByName) {
  RwSeries s = series({{"level", "app"}, {"app", "web"}, {"__name__", "n"}, {"Zone", "z"}}, {});
  sort_rw_labels(s);
  std::vector<std::string> names;
  for (const auto& l : s.labels) names.push_back(l.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Zone", "__name__", "app", "level"}));
}

TEST(RemoteWriteProto, RetryClassification) {
  EXPECT_EQ(classify_remote_write_status(200), RwRetry::Done);
  EXPECT_EQ(classify_remote_write_status(204), RwRetry::Done);
  EXPECT_EQ(classify_remote_write_status(0), RwRetry::Retry);
  EXPECT_EQ(classify_remote_write_status(429), RwRetry::Retry);
  EXPECT_EQ(classify_remote_write_status(500), RwRetry::Retry);
  EXPECT_EQ(classify_remote_write_status(503), RwRetry::Retry);
  EXPECT_EQ(classify_remote_write_status(400), RwRetry::Drop);
  EXPECT_EQ(classify_remote_write_status(404), RwRetry::Drop);
  EXPECT_EQ(classify_remote_write_status(413), RwRetry::Drop);
}

TEST(RemoteWriteConfig, YamlAndFlag) {
  ServerConfig c;
  ASSERT_TRUE(load_server_config_text("s.yaml",
                                      "remote_write:\n  url: http://127.0.0.1:9090/api/v1/write\n"
                                      "  queue_max_samples: 10\n  batch_max_samples: 5\n"
                                      "  timeout: 2s\n",
                                      c));
  EXPECT_EQ(c.remote_write_url, "http://127.0.0.1:9090/api/v1/write");
  EXPECT_EQ(c.remote_write_queue_max_samples, 10u);
  EXPECT_EQ(c.remote_write_batch_max_samples, 5u);
  EXPECT_EQ(c.remote_write_timeout, std::chrono::milliseconds(2'000));
  ServerConfig bad;
  EXPECT_FALSE(load_server_config_text("s.yaml", "remote_write:\n  url: https://x/\n", bad));
  auto cmd = parse_server_command_line({"--remote-write", "http://h:9090/api/v1/write"});
  ASSERT_TRUE(cmd);
  EXPECT_EQ(cmd->config.remote_write_url, "http://h:9090/api/v1/write");
  EXPECT_FALSE(parse_server_command_line({"--remote-write", "ftp://h/"}));
}

TEST(RemoteWriteProto, UrlParsing) {
  auto u = parse_remote_write_url("http://127.0.0.1:9090/api/v1/write");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 9090);
  EXPECT_EQ(u->target, "/api/v1/write");
  EXPECT_FALSE(parse_remote_write_url("https://x/api/v1/write"));
  EXPECT_FALSE(parse_remote_write_url("http://x:0/"));
  EXPECT_FALSE(parse_remote_write_url("http://u:p@x:1/"));
}


SeriesPoint counter_point(std::string stat, double value) {
  SeriesPoint p;
  p.level = Level::App;
  p.app = "web";
  p.metric = "http.requests";
  p.stat = std::move(stat);
  p.value = value;
  return p;
}

TEST(RemoteWriteSink, RetriesA503ThenSendsTheMetricsNamesAndHeaders) {
  ScriptedReceiver receiver({503, 204, 204}, /*gate_first=*/true);
  RemoteWriteSink sink(fast_options(receiver.port()));
  // A first sample keeps the sender busy (its answer waits) while both intervals queue up, so
  // they travel in one batch.
  sink.enqueue({series({{"__name__", "warmup"}}, {{1, 1000}})});
  receiver.first_request_read.get_future().wait();
  sink.emit(testing::output_of(1'700'000'000, 10,
                               {counter_point("count", 30), counter_point("rate", 3)}));
  sink.emit(testing::output_of(1'700'000'010, 10,
                               {counter_point("count", 12), counter_point("rate", 1.2)}));
  receiver.answer_first.set_value();
  sink.stop();
  receiver.join();
  const auto c = sink.counters();
  EXPECT_EQ(c.samples_queued, 5u);
  EXPECT_EQ(c.samples_sent, 5u);
  EXPECT_EQ(c.retries, 1u);
  EXPECT_EQ(c.requests, 3u);
  EXPECT_EQ(c.samples_dropped + c.samples_rejected, 0u);
  EXPECT_EQ(c.last_status, 204);
  ASSERT_EQ(receiver.requests.size(), 3u);
  EXPECT_EQ(receiver.requests[0], receiver.requests[1]);  // the same batch, retried
  const std::string& req = receiver.requests[2];
  EXPECT_EQ(req.rfind("POST /api/v1/write HTTP/1.1\r\n", 0), 0u) << req;
  for (const char* h : {"Content-Encoding: snappy", "Content-Type: application/x-protobuf",
                        "X-Prometheus-Remote-Write-Version: 0.1.0", "User-Agent: statherd"})
    EXPECT_NE(req.find(h), std::string::npos) << h << " missing in " << req;
  const std::string packed = req.substr(req.find("\n\n") + 2);
  std::string raw;
  ASSERT_TRUE(snappy::Uncompress(packed.data(), packed.size(), &raw));
  const auto got = decode_write_request(raw);
  ASSERT_EQ(got.size(), 2u);  // two series, each with both intervals in time order
  const std::vector<RwLabel> labels = {
      {"__name__", "statherd_http_requests_count_total"}, {"app", "web"}, {"level", "app"}};
  EXPECT_EQ(got[0].labels, labels);
  EXPECT_EQ(got[0].samples, (std::vector<RwSample>{{30, 1'700'000'000'000},
                                                   {42, 1'700'000'010'000}}));
  EXPECT_EQ(got[1].labels[0].value, "statherd_http_requests_rate");
  EXPECT_EQ(got[1].samples, (std::vector<RwSample>{{3, 1'700'000'000'000},
                                                   {1.2, 1'700'000'010'000}}));
}

const RwSeries* find_series(const std::vector<RwSeries>& series, const std::string& name,
                            const std::string& quantile = "") {
  for (const RwSeries& s : series) {
    bool name_ok = false, quantile_ok = quantile.empty();
    for (const RwLabel& l : s.labels) {
      if (l.name == "__name__") name_ok = l.value == name;
      if (l.name == "quantile") quantile_ok = l.value == quantile;
    }
    if (name_ok && quantile_ok) return &s;
  }
  return nullptr;
}

double value_of(const std::vector<RwSeries>& series, const std::string& name) {
  const RwSeries* s = find_series(series, name);
  if (s == nullptr || s->samples.size() != 1) {
    ADD_FAILURE() << name << " not sent (once)";
    return -1;
  }
  return s->samples[0].value;
}

// The series come straight from the records, with the /metrics names and the engine's totals;
// the kind is the record's (a counter without a "rate" stat is still a counter).
TEST(RwSeriesBuilder, NamesRecordsAsMetricsAndSendsTheEngineTotals) {
  auto key = make_series_key(Level::Host, "web", "h1", -1, "db.latency", {{"dc", "x"}});
  auto jobs = make_series_key(Level::App, "web", "", -1, "jobs", {});
  IntervalOutput out;
  out.start_s = 1'700'000'000;
  RollupRecord& d = out.add(key, SeriesKind::Distribution);
  d.count_total = 40;
  d.sum_total = 12.5;
  out.stat("count", 4);
  out.stat("sum", 2.5);
  out.stat("max", 9);
  out.stat("p99", 8);
  out.add(jobs, SeriesKind::Counter).count_total = 530;
  out.stat("count", 30);
  out.stat("m1_rate", 0.5);
  RwSeriesBuilder builder;
  std::vector<RwSeries> got;
  builder.build(out, got);
  ASSERT_EQ(got.size(), 6u);  // p99 (quantile), max, _sum, _count, _count_total, m1_rate
  const RwSeries* p99 = find_series(got, "statherd_db_latency", "0.99");
  ASSERT_NE(p99, nullptr);
  EXPECT_EQ(p99->labels, (std::vector<RwLabel>{{"__name__", "statherd_db_latency"},
                                                 {"app", "web"},
                                                 {"dc", "x"},
                                                 {"host", "h1"},
                                                 {"level", "host"},
                                                 {"quantile", "0.99"}}));
  EXPECT_EQ(p99->samples, (std::vector<RwSample>{{8, 1'700'000'000'000}}));
  EXPECT_EQ(value_of(got, "statherd_db_latency_max"), 9);
  EXPECT_EQ(value_of(got, "statherd_db_latency_sum"), 12.5);
  EXPECT_EQ(value_of(got, "statherd_db_latency_count"), 40);
  EXPECT_EQ(value_of(got, "statherd_jobs_count_total"), 530);
  EXPECT_EQ(value_of(got, "statherd_jobs_m1_rate"), 0.5);

  // Next interval: the counter is not emitted (not sent); the sum is unknown (last one sent).
  IntervalOutput next;
  next.start_s = out.start_s + 10;
  RollupRecord& d2 = next.add(key, SeriesKind::Distribution);
  d2.count_total = 41;
  next.stat("count", 1);
  got.clear();
  builder.build(next, got);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(value_of(got, "statherd_db_latency_count"), 41);
  EXPECT_EQ(value_of(got, "statherd_db_latency_sum"), 12.5);
  EXPECT_EQ(got[0].samples[0].timestamp_ms, 1'700'000'010'000);
  EXPECT_EQ(builder.cached_keys(), 2u);
  for (int i = 2; i <= 5; ++i) {  // idle keys leave the cache after 3 intervals
    IntervalOutput empty;
    empty.start_s = out.start_s + 10 * i;
    builder.build(empty, got);
  }
  EXPECT_EQ(builder.cached_keys(), 0u);
}

TEST(RemoteWriteSink, DropsA400WithoutRetry) {
  ScriptedReceiver receiver({400});
  RemoteWriteSink sink(fast_options(receiver.port()));
  sink.enqueue({series({{"__name__", "x"}}, {{1, 1000}}), series({{"__name__", "y"}}, {{2, 1000}})});
  sink.stop();
  receiver.join();
  const auto c = sink.counters();
  EXPECT_EQ(c.requests, 1u);
  EXPECT_EQ(c.retries, 0u);
  EXPECT_EQ(c.samples_rejected, 2u);
  EXPECT_EQ(c.samples_sent, 0u);
  EXPECT_EQ(c.last_status, 400);
}

TEST(RemoteWriteSink, BoundedQueueDropsOldestAndCounts) {
  RemoteWriteSinkOptions o = fast_options(refusing_port());
  o.queue_max_samples = 3;
  o.batch_max_samples = 1;
  o.backoff_initial = o.backoff_max = std::chrono::milliseconds(60'000);
  o.stop_timeout = std::chrono::milliseconds(0);
  RemoteWriteSink sink(o);
  std::vector<RwSeries> five;
  for (int i = 0; i < 5; ++i)
    five.push_back(series({{"__name__", "s"}}, {{double(i), i * 1000}}));
  sink.enqueue(std::move(five));  // one call: the sender cannot take any before the trim
  auto c = sink.counters();
  EXPECT_EQ(c.samples_queued, 5u);
  EXPECT_EQ(c.samples_dropped, 2u);  // the two oldest
  EXPECT_LE(c.queue_depth, 3u);
  sink.stop();  // nothing can be delivered: the rest is dropped at stop, and counted
  c = sink.counters();
  EXPECT_EQ(c.samples_sent, 0u);
  EXPECT_EQ(c.samples_dropped, 5u);
  EXPECT_EQ(c.queue_depth, 0u);
}

// queued == sent + dropped + rejected + queue_depth + samples_in_flight in every snapshot, so
// the self-metrics can prove that drops are counted exactly.
TEST(RemoteWriteSink, InFlightSamplesCloseTheBalance) {
  ScriptedReceiver receiver({503}, /*gate_first=*/true);
  RemoteWriteSinkOptions o = fast_options(receiver.port());
  o.queue_max_samples = 3;
  o.batch_max_samples = 2;
  o.backoff_initial = o.backoff_max = std::chrono::milliseconds(60'000);
  o.stop_timeout = std::chrono::milliseconds(0);
  RemoteWriteSink sink(o);
  auto enqueue = [&](int from, int to) {
    std::vector<RwSeries> batch;
    for (int i = from; i < to; ++i)
      batch.push_back(series({{"__name__", "s" + std::to_string(i)}}, {{double(i), 1000}}));
    sink.enqueue(std::move(batch));
  };
  auto balance = [](const RemoteWriteSink::Counters& c) {
    return c.samples_sent + c.samples_dropped + c.samples_rejected + c.queue_depth +
           c.samples_in_flight;
  };
  enqueue(0, 6);  // trimmed to the newest 3 before the sender can take any
  receiver.first_request_read.get_future().wait();  // a batch of 2 is on the wire
  auto c = sink.counters();
  EXPECT_EQ(c.samples_dropped, 3u);
  EXPECT_EQ(c.samples_in_flight, 2u);
  EXPECT_EQ(c.queue_depth, 1u);
  EXPECT_EQ(balance(c), c.samples_queued);
  enqueue(6, 9);  // 4 queued > 3: the oldest queued one goes, the in-flight batch stays
  c = sink.counters();
  EXPECT_EQ(c.samples_dropped, 4u);
  EXPECT_EQ(c.samples_in_flight, 2u);
  EXPECT_EQ(c.queue_depth, 3u);
  EXPECT_EQ(balance(c), 9u);
  receiver.answer_first.set_value();
  sink.stop();  // the 503 cannot be retried before the stop deadline: all 9 end up dropped
  receiver.join();
  c = sink.counters();
  EXPECT_EQ(c.samples_in_flight, 0u);
  EXPECT_EQ(c.samples_dropped, 9u);
  EXPECT_EQ(balance(c), 9u);
}

// SIGHUP: a batch stuck retrying against a dead receiver goes to the new URL at once, and the
// samples still queued follow it; nothing is dropped.
TEST(RemoteWriteSink, ReconfigureSendsTheRetriedBatchToTheNewUrl) {
  RemoteWriteSinkOptions dead = fast_options(refusing_port());
  dead.backoff_initial = std::chrono::milliseconds(50);
  dead.backoff_max = std::chrono::milliseconds(100);
  RemoteWriteSink sink(dead);
  sink.enqueue({series({{"__name__", "x"}}, {{1, 1000}})});
  while (sink.counters().request_failures == 0) std::this_thread::yield();
  sink.enqueue({series({{"__name__", "y"}}, {{2, 1000}})});
  ScriptedReceiver receiver({204, 204});
  RemoteWriteSinkOptions next = fast_options(receiver.port());
  next.queue_max_samples = 10;
  sink.reconfigure(next);
  EXPECT_EQ(sink.options().queue_max_samples, 10u);
  receiver.join();  // both requests answered
  sink.stop();
  const auto c = sink.counters();
  EXPECT_EQ(c.samples_sent, 2u);
  EXPECT_EQ(c.samples_dropped, 0u);
  EXPECT_EQ(c.queue_depth, 0u);
  ASSERT_EQ(receiver.requests.size(), 2u);
}

}  // namespace
}  // namespace statherd::server
