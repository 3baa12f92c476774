// agent/sample_guard: non-finite values never leave the agent; they become a per-source error.
#include "agent/sample_guard.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "agent/agent_loop.h"
#include "common/wire.h"

namespace statherd::agent {
namespace {

using namespace std::chrono_literals;
constexpr double kInf = std::numeric_limits<double>::infinity();

Sample value_sample(const std::string& name, Kind kind, double v) {
  Sample s;
  s.name = name;
  s.kind = kind;
  s.value = v;
  return s;
}

TEST(SampleGuard, DropsNonFiniteCountersAndGaugesWithOneErrorNamingThem) {
  SourceSamples ss;
  ss.id.path = "/tmp/app-1-1.mmstats";
  ss.samples = {value_sample("ok.count", Kind::Counter, 3),
                value_sample("nan.count", Kind::Counter, std::nan("")),
                value_sample("inf.gauge", Kind::Gauge, -kInf),
                value_sample("ok.gauge", Kind::Gauge, -2)};
  std::vector<SourceError> errors;
  EXPECT_EQ(drop_non_finite(ss, errors), 2u);
  ASSERT_EQ(ss.samples.size(), 2u);
  EXPECT_EQ(ss.samples[0].name, "ok.count");
  EXPECT_EQ(ss.samples[1].name, "ok.gauge");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].source, "/tmp/app-1-1.mmstats");
  EXPECT_NE(errors[0].message.find("nan.count, inf.gauge"), std::string::npos) << errors[0].message;
  EXPECT_NE(errors[0].message.find("hint:"), std::string::npos);
}

TEST(SampleGuard, ChecksDistributionsAndKeepsUnknownSummaryMinMax) {
  auto summary = std::make_shared<Distribution>();
  summary->form = Distribution::Form::Summary;
  summary->count = 3;
  summary->sum = 6;
  summary->min = std::nan("");  // Scales PMF without min: not known, allowed
  summary->max = std::nan("");
  Sample d;
  d.name = "pmf";
  d.kind = Kind::Distribution;
  d.dist = summary;
  EXPECT_TRUE(sample_is_finite(d));
  summary->quantiles = {{0.99, kInf}};
  EXPECT_FALSE(sample_is_finite(d));
  auto buckets = std::make_shared<Distribution>();
  buckets->form = Distribution::Form::Buckets;
  buckets->bucket_upper_bounds = {1, kInf};  // le="+Inf" is a valid bound
  buckets->bucket_counts = {1, 2};
  buckets->count = 3;
  d.dist = buckets;
  EXPECT_TRUE(sample_is_finite(d));
  buckets->sum = std::nan("");
  EXPECT_FALSE(sample_is_finite(d));
  Sample text;
  text.kind = Kind::Text;
  text.value = std::nan("");  // unused for text
  EXPECT_TRUE(sample_is_finite(text));
}

TEST(SampleGuard, NothingDroppedNoError) {
  SourceSamples ss;
  ss.samples = {value_sample("a", Kind::Counter, 1)};
  std::vector<SourceError> errors;
  EXPECT_EQ(drop_non_finite(ss, errors), 0u);
  EXPECT_TRUE(errors.empty());
}

// A source that reads NaN and +Inf next to good values, as a process writing NaN into a
// Python float stat would.
class PoisonSource : public Source {
 public:
  std::string describe() const override { return "poison"; }
  std::string kind() const override { return "statherd_v2"; }
  void scrape(int64_t now_ms, ScrapeReport& out) override {
    SourceSamples s;
    s.id = {"h", "app", 7, 1234, "/tmp/app-7.statherd"};
    for (auto [name, v] :
         {std::pair{"good.count", 5.0}, {"bad.count", std::nan("")}, {"hot", kInf}}) {
      Sample c = value_sample(name, Kind::Counter, v);
      c.timestamp_ms = now_ms;
      s.samples.push_back(c);
    }
    out.sources.push_back(s);
  }
};

class CapturingSender : public BatchSender {
 public:
  ShipResult send(uint64_t, std::string_view body) override {
    bodies.emplace_back(body);
    return {ShipOutcome::Acked, 200, ""};
  }
  std::vector<std::string> bodies;
};

TEST(SampleGuard, TheAgentLoopShipsABatchTheServerAcceptsWithThePoisonAsAnError) {
  char tmpl[] = "/tmp/statherd-guard-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    auto spool = Spool::open(dir + "/spool", 1 << 20, 1'000).value();
    std::vector<std::unique_ptr<Source>> sources;
    sources.push_back(std::make_unique<PoisonSource>());
    CapturingSender sender;
    SpoolDelivery delivery(*spool, sender, Backoff(1s, 30s, 1));
    AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources, *spool, delivery,
                   [] { return int64_t{20'000}; });
    loop.tick(20'000, SteadyClock::now() + 60s);
    ASSERT_EQ(sender.bodies.size(), 1u);
    auto batch = decode_batch(sender.bodies[0]);  // the server's decoder refuses NaN
    ASSERT_TRUE(batch.ok()) << batch.error().to_string();
    ASSERT_FALSE(batch->sources.empty());
    ASSERT_EQ(batch->sources[0].samples.size(), 1u);
    EXPECT_EQ(batch->sources[0].samples[0].name, "good.count");
    ASSERT_EQ(batch->errors.size(), 1u);
    EXPECT_EQ(batch->errors[0].source, "/tmp/app-7.statherd");
    EXPECT_NE(batch->errors[0].message.find("bad.count, hot"), std::string::npos);
    ASSERT_EQ(loop.last_scrape().size(), 1u);
    EXPECT_EQ(loop.last_scrape()[0].errors, 1u);
  }
  std::filesystem::remove_all(dir);
}

// Anyone who can write a watched stat directory could name a file's app "self" (file name
// self-<pid>-1.mmstats, a v2 header's app, a multiproc directory named self) and forge the
// statherd.self.* series operators alert on. Such a source is refused with a per-source error;
// the agent's own self-metrics still ship as app "self".
class ForgingSource : public Source {
 public:
  std::string describe() const override { return "forger"; }
  std::string kind() const override { return "mmstats_v1"; }
  void scrape(int64_t now_ms, ScrapeReport& out) override {
    for (auto [app, path] : {std::pair{"self", "/tmp/self-7-1.mmstats"},
                             {"web", "/tmp/web-8-1.mmstats"}, {"self", "/tmp/x.statherd"}}) {
      SourceSamples s;
      s.id = {"h", app, 7, 1234, path};
      Sample c = value_sample("agent.spool.batches", Kind::Gauge, 0);
      c.timestamp_ms = now_ms;
      s.samples.push_back(c);
      out.sources.push_back(s);
    }
  }
};

TEST(SampleGuard, AFileSourceNamedSelfIsRefusedAndTheAgentsOwnSelfMetricsShip) {
  char tmpl[] = "/tmp/statherd-guard-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    auto spool = Spool::open(dir + "/spool", 1 << 20, 1'000).value();
    std::vector<std::unique_ptr<Source>> sources;
    sources.push_back(std::make_unique<ForgingSource>());
    CapturingSender sender;
    SpoolDelivery delivery(*spool, sender, Backoff(1s, 30s, 1));
    AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources, *spool, delivery,
                   [] { return int64_t{20'000}; });
    loop.tick(20'000, SteadyClock::now() + 60s);
    ASSERT_EQ(sender.bodies.size(), 1u);
    auto batch = decode_batch(sender.bodies[0]);
    ASSERT_TRUE(batch.ok()) << batch.error().to_string();
    std::vector<std::string> paths;
    for (const auto& ss : batch->sources) paths.push_back(ss.id.app + " " + ss.id.path);
    EXPECT_EQ(paths, (std::vector<std::string>{"web /tmp/web-8-1.mmstats", "self statherd-agent"}));
    ASSERT_EQ(batch->errors.size(), 2u);
    EXPECT_EQ(batch->errors[0].source, "/tmp/self-7-1.mmstats");
    EXPECT_NE(batch->errors[0].message.find("app name \"self\" is reserved"), std::string::npos)
        << batch->errors[0].message;
    EXPECT_NE(batch->errors[0].message.find("hint:"), std::string::npos);
    EXPECT_EQ(batch->errors[1].source, "/tmp/x.statherd");
    ASSERT_EQ(loop.last_scrape().size(), 1u);
    EXPECT_EQ(loop.last_scrape()[0].read, 1u);
    EXPECT_EQ(loop.last_scrape()[0].errors, 2u);
  }
  std::filesystem::remove_all(dir);
}

// Issue #14, hostile review: prometheus_client keeps a histogram's _sum NaN (or +-Inf) forever
// after one such observation; dropping the distribution lost the series for good. Its sum is
// now unknown and its count and buckets ship; a non-finite count still drops it.
TEST(SampleGuard, ANonFiniteSumBecomesUnknownAndTheDistributionShips) {
  auto buckets = std::make_shared<Distribution>();
  buckets->form = Distribution::Form::Buckets;
  buckets->bucket_upper_bounds = {0.01, kInf};
  buckets->bucket_counts = {1500, 601};
  buckets->count = 2101;
  buckets->sum = std::nan("");
  auto summary = std::make_shared<Distribution>();
  summary->form = Distribution::Form::Summary;
  summary->count = 7;
  summary->sum = -kInf;
  auto bad_count = std::make_shared<Distribution>(*buckets);
  bad_count->count = std::nan("");
  SourceSamples ss;
  ss.id.path = "/run/prom";
  for (auto [name, d] : {std::pair{"lat", buckets}, {"size", summary}, {"bad", bad_count}}) {
    Sample s;
    s.name = name;
    s.kind = Kind::Distribution;
    s.dist = d;
    ss.samples.push_back(s);
  }
  std::vector<SourceError> errors;
  ASSERT_TRUE(guard_source(ss, errors));
  ASSERT_EQ(ss.samples.size(), 2u);
  EXPECT_EQ(ss.samples[0].name, "lat");
  EXPECT_TRUE(ss.samples[0].dist->sum_unknown);
  EXPECT_EQ(ss.samples[0].dist->sum, 0);
  EXPECT_EQ(ss.samples[0].dist->count, 2101);
  EXPECT_EQ(ss.samples[0].dist->bucket_counts, buckets->bucket_counts);
  EXPECT_TRUE(ss.samples[1].dist->sum_unknown);
  EXPECT_EQ(ss.samples[1].dist->count, 7);
  ASSERT_EQ(errors.size(), 1u);  // only the NaN count
  EXPECT_NE(errors[0].message.find("bad"), std::string::npos) << errors[0].message;
  EXPECT_TRUE(std::isnan(buckets->sum));  // the source's own sample is not changed under it
  Batch b;
  b.agent_id = "a";
  b.sources.push_back(ss);
  auto back = decode_batch(encode_batch(b));
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_TRUE(back->sources[0].samples[0].dist->sum_unknown);
}

}  // namespace
}  // namespace statherd::agent
