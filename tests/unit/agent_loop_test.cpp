// The agent loop: aligned ticks, spool-before-ship, batch contents.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

#include <filesystem>

#include "agent/agent_loop.h"

namespace statherd::agent {
namespace {

using namespace std::chrono_literals;

class FakeSource : public Source {
 public:
  std::string describe() const override { return "fake"; }
  void scrape(int64_t now_ms, ScrapeReport& out) override {
    SourceSamples s;
    s.id = {"h", "app", 99, 1234, "/tmp/app-99-99.mmstats"};
    Sample c;
    c.name = "requests.count";
    c.kind = Kind::Counter;
    c.value = static_cast<double>(++scrapes);
    c.timestamp_ms = now_ms;
    s.samples.push_back(c);
    out.sources.push_back(s);
    out.errors.push_back({"/tmp/bad.mmstats", "truncated"});
  }
  int scrapes = 0;
};

// Records what it is asked to send and checks that the batch was already on disk.
class RecordingSender : public BatchSender {
 public:
  explicit RecordingSender(Spool& spool) : spool_(spool) {}
  ShipResult send(uint64_t seq, std::string_view body) override {
    auto on_disk = spool_.read(seq);
    spooled_before_send = spooled_before_send && on_disk.ok() && *on_disk == body;
    sent.emplace_back(seq, std::string(body));
    return {outcome, outcome == ShipOutcome::Acked ? 200 : 503, ""};
  }
  Spool& spool_;
  ShipOutcome outcome = ShipOutcome::Acked;
  bool spooled_before_send = true;
  std::vector<std::pair<uint64_t, std::string>> sent;
};

TEST(AgentLoop, AlignsTicksToWallClockMultiples) {
  EXPECT_EQ(next_aligned_tick(12'345, 10'000), 20'000);
  EXPECT_EQ(next_aligned_tick(20'000, 10'000), 30'000);
  EXPECT_EQ(next_aligned_tick(19'999, 10'000), 20'000);
  EXPECT_EQ(next_aligned_tick(0, 500), 500);
}

class AgentLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/statherd-loop-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    spool_ = Spool::open(dir_ + "/spool", 1 << 20, 1'000).value();
    sources_.push_back(std::make_unique<FakeSource>());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
  std::unique_ptr<Spool> spool_;
  std::vector<std::unique_ptr<Source>> sources_;
};

TEST_F(AgentLoopTest, TickSpoolsThenShipsBatchWithSeqAgentIdAndSamples) {
  RecordingSender sender(*spool_);
  SpoolDelivery delivery(*spool_, sender, Backoff(1s, 30s, 1));
  AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources_, *spool_, delivery,
                 [] { return int64_t{20'000}; });
  loop.tick(20'000, SteadyClock::now() + 60s);
  loop.tick(30'000, SteadyClock::now() + 60s);
  ASSERT_EQ(sender.sent.size(), 2u);
  EXPECT_TRUE(sender.spooled_before_send);
  EXPECT_EQ(spool_->count(), 0u);
  EXPECT_EQ(spool_->last_scrape_ms(), 30'000);
  auto batch = decode_batch(sender.sent[1].second);
  ASSERT_TRUE(batch.ok()) << batch.error().to_string();
  EXPECT_EQ(batch->agent_id, "agent-1");
  EXPECT_EQ(batch->seq, sender.sent[0].first + kSeqStride);  // each batch owns a seq window
  EXPECT_EQ(batch->seq, sender.sent[1].first);
  EXPECT_EQ(batch->sent_ms, 30'000);
  ASSERT_EQ(batch->sources.size(), 2u);  // the fake source + the agent's self-metrics
  EXPECT_EQ(batch->sources[0].samples[0].value, 2);
  EXPECT_EQ(batch->sources[1].id.app, "self");
  ASSERT_EQ(batch->errors.size(), 1u);
  EXPECT_EQ(batch->errors[0].source, "/tmp/bad.mmstats");
}

TEST_F(AgentLoopTest, KeepsBatchesSpooledWhileServerFailsAndReplaysInOrder) {
  RecordingSender sender(*spool_);
  sender.outcome = ShipOutcome::RetryLater;
  SteadyClock::time_point fake_now = SteadyClock::now();
  SpoolDelivery delivery(*spool_, sender, Backoff(1s, 30s, 1), [&] { return fake_now; });
  AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources_, *spool_, delivery,
                 [] { return int64_t{0}; });
  loop.tick(10'000, fake_now + 60s);
  fake_now += 60s;  // past any backoff
  loop.tick(20'000, fake_now + 60s);
  EXPECT_EQ(spool_->count(), 2u);
  sender.outcome = ShipOutcome::Acked;
  fake_now += 60s;
  loop.tick(30'000, fake_now + 60s);
  EXPECT_EQ(spool_->count(), 0u);
  ASSERT_EQ(sender.sent.size(), 5u);  // 2 failed attempts, then 3 in order
  EXPECT_LT(sender.sent[2].first, sender.sent[3].first);
  EXPECT_LT(sender.sent[3].first, sender.sent[4].first);
}

TEST_F(AgentLoopTest, RunStopsWhenStopRequestedAndShutdownShipsOneFinalScrape) {
  RecordingSender sender(*spool_);
  SpoolDelivery delivery(*spool_, sender, Backoff(1s, 30s, 1));
  AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources_, *spool_, delivery,
                 [] { return int64_t{20'000}; });
  StopSignal stop;
  stop.request();
  loop.run(stop);
  EXPECT_TRUE(sender.sent.empty());  // no tick ran
  loop.flush_on_shutdown();
  ASSERT_EQ(sender.sent.size(), 1u);  // the final scrape, spooled then shipped
  auto batch = decode_batch(sender.sent[0].second);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->sources[0].samples[0].value, 1);
  EXPECT_EQ(spool_->count(), 0u);
}

TEST_F(AgentLoopTest, ShutdownLeavesUnshippedFinalBatchInTheSpool) {
  RecordingSender sender(*spool_);
  sender.outcome = ShipOutcome::RetryLater;
  SpoolDelivery delivery(*spool_, sender, Backoff(1s, 30s, 1));
  AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources_, *spool_, delivery,
                 [] { return int64_t{20'000}; });
  loop.flush_on_shutdown();
  EXPECT_EQ(spool_->count(), 1u);
  EXPECT_EQ(loop.counters().batches_written, 1u);
}

TEST_F(AgentLoopTest, ReloadRunsTheHandlerBetweenTicksTicksAfterSuccessAndCountsResults) {
  RecordingSender sender(*spool_);
  SpoolDelivery delivery(*spool_, sender, Backoff(1s, 30s, 1));
  StopSignal stop;
  int reloads = 0;
  AgentLoopOptions opts{"agent-1", "h", 10s, 2s, 500};
  opts.reload = [&](AgentLoop& loop) {
    ++reloads;
    loop.set_interval(20s);
    // A second SIGHUP arrives while the loop waits for its (20 s away) tick; it must wake it.
    if (reloads == 1) stop.request_reload();
    if (reloads == 2) stop.request();
    return ReloadOutcome{reloads == 1, reloads == 1 ? "reloaded" : "bad"};
  };
  AgentLoop loop(std::move(opts), sources_, *spool_, delivery, [] { return int64_t{20'000}; });
  stop.request_reload();
  loop.run(stop);
  EXPECT_EQ(reloads, 2);
  EXPECT_EQ(loop.counters().reloads_ok, 1u);
  EXPECT_EQ(loop.counters().reloads_failed, 1u);
  EXPECT_FALSE(loop.last_reload().ok);
  EXPECT_EQ(loop.interval(), 20s);
  EXPECT_EQ(sender.sent.size(), 1u);  // the tick right after the good reload; none after the bad
}

TEST_F(AgentLoopTest, CountsBatchesShippedAfterAFailureAsReplayed) {
  RecordingSender sender(*spool_);
  sender.outcome = ShipOutcome::RetryLater;
  SteadyClock::time_point fake_now = SteadyClock::now();
  SpoolDelivery delivery(*spool_, sender, Backoff(1s, 30s, 1), [&] { return fake_now; });
  AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources_, *spool_, delivery,
                 [] { return int64_t{0}; });
  loop.tick(10'000, fake_now + 60s);  // fails: seq 1 waits
  fake_now += 60s;
  loop.tick(20'000, fake_now + 60s);  // fails again: seq 1 and 2 wait
  sender.outcome = ShipOutcome::Acked;
  fake_now += 60s;
  loop.tick(30'000, fake_now + 60s);  // 1 and 2 are replays, 3 is shipped on its first try
  EXPECT_EQ(spool_->count(), 0u);
  EXPECT_EQ(loop.counters().replayed_batches, 2u);
  EXPECT_EQ(loop.counters().batches_written, 3u);
  loop.tick(40'000, fake_now + 60s);
  EXPECT_EQ(loop.counters().replayed_batches, 2u);
}

TEST_F(AgentLoopTest, CountsSourcesReadAndErrorsPerKind) {
  RecordingSender sender(*spool_);
  SpoolDelivery delivery(*spool_, sender, Backoff(1s, 30s, 1));
  AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources_, *spool_, delivery,
                 [] { return int64_t{0}; });
  loop.tick(10'000, SteadyClock::now() + 60s);
  loop.tick(20'000, SteadyClock::now() + 60s);
  EXPECT_EQ(loop.counters().sources_read.at("other"), 2u);
  EXPECT_EQ(loop.counters().scrape_errors.at("other"), 2u);
  EXPECT_EQ(loop.counters().samples_read, 2u);
  ASSERT_EQ(loop.last_scrape().size(), 1u);
  EXPECT_EQ(loop.last_scrape()[0].read, 1u);
  EXPECT_EQ(loop.last_scrape()[0].first_error, "/tmp/bad.mmstats: truncated");
  EXPECT_EQ(loop.last_tick_ms(), 20'000);
}

// A source seen fresh once, whose first batch the server declares malformed (quarantined):
// the next batches carry it fresh until one is acknowledged, so its increments are counted.
class FreshOnceSource : public Source {
 public:
  std::string describe() const override { return "fresh-once"; }
  void scrape(int64_t now_ms, ScrapeReport& out) override {
    SourceSamples s;
    s.id = {"h", "app", 7, 1234, "/tmp/app-7-7.mmstats"};
    s.fresh = ++scrapes == 1;
    Sample c;
    c.name = "requests.count";
    c.kind = Kind::Counter;
    c.value = 10.0 * scrapes;
    c.timestamp_ms = now_ms;
    s.samples.push_back(c);
    out.sources.push_back(s);
  }
  int scrapes = 0;
};

TEST(AgentLoopFresh, KeepsASourceFreshUntilABatchCarryingItIsAcknowledged) {
  char tmpl[] = "/tmp/statherd-loop-fresh-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  auto spool = Spool::open(std::string(tmpl) + "/spool", 1 << 20, 1'000).value();
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<FreshOnceSource>());
  RecordingSender sender(*spool);
  std::vector<int> statuses = {400, 503, 200, 200};  // verdict, outage, then accepted
  class Scripted : public BatchSender {
   public:
    Scripted(RecordingSender& rec, std::vector<int>& st) : rec_(rec), st_(st) {}
    ShipResult send(uint64_t seq, std::string_view body) override {
      rec_.send(seq, body);
      const int status = st_.empty() ? 200 : st_.front();
      if (!st_.empty()) st_.erase(st_.begin());
      const std::string text = status == 400 ? R"({"verdict":"malformed_batch"})" : "";
      return {classify_http_status(status, text), status, text};
    }
    RecordingSender& rec_;
    std::vector<int>& st_;
  } scripted(sender, statuses);
  SteadyClock::time_point fake_now = SteadyClock::now();
  SpoolDelivery delivery(*spool, scripted, Backoff(1s, 30s, 1), [&] { return fake_now; });
  AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources, *spool, delivery,
                 [] { return int64_t{0}; });
  for (int64_t t = 10'000; t <= 50'000; t += 10'000) {
    loop.tick(t, fake_now + 60s);
    fake_now += 60s;
  }
  std::vector<bool> fresh;
  for (const auto& [seq, body] : sender.sent) fresh.push_back(decode_batch(body)->sources[0].fresh);
  // 1: fresh, quarantined. 2: fresh again, 503. 2 again: acked. 3, 4: not fresh any more.
  EXPECT_EQ(fresh, (std::vector<bool>{true, true, true, true, false, false}));
  EXPECT_EQ(delivery.stats().quarantined, 1u);
  std::filesystem::remove_all(tmpl);
}

// A writer's file read for the last time (its process died): the source reports it once and
// never again. The spool's filesystem is full for two ticks (the batch write fails, then even
// the state write fails): those batches are held in memory and spooled, in order, once the
// spool is writable again, so the final increments still arrive.
class DyingFileSource : public Source {
 public:
  std::string describe() const override { return "dying"; }
  void scrape(int64_t now_ms, ScrapeReport& out) override {
    if (++scrapes > 2) return;  // scrape 2 was the final read
    SourceSamples s;
    s.id = {"h", "app", 8, 1234, "/tmp/app-8-8.mmstats"};
    s.fresh = scrapes == 1;
    Sample c;
    c.name = "requests.count";
    c.kind = Kind::Counter;
    c.value = scrapes == 1 ? 10 : 15;
    c.timestamp_ms = now_ms;
    s.samples.push_back(c);
    out.sources.push_back(s);
  }
  int scrapes = 0;
};

// Runs f with writes limited to max_file_bytes (EFBIG beyond, as on a full disk).
template <typename F>
void with_file_size_limit(rlim_t max_file_bytes, F f) {
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = max_file_bytes;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  f();
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
}

TEST(AgentLoopSpoolFull, HoldsBatchesThatCannotBeSpooledAndSpoolsThemInOrderLater) {
  char tmpl[] = "/tmp/statherd-loop-full-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  auto spool = Spool::open(std::string(tmpl) + "/spool", 1 << 20, 1'000).value();
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<DyingFileSource>());
  RecordingSender sender(*spool);
  SpoolDelivery delivery(*spool, sender, Backoff(1s, 30s, 1));
  AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources, *spool, delivery,
                 [] { return int64_t{0}; });
  loop.tick(10'000, SteadyClock::now() + 60s);
  with_file_size_limit(200, [&] { loop.tick(20'000, SteadyClock::now() + 60s); });  // batch
  with_file_size_limit(0, [&] { loop.tick(30'000, SteadyClock::now() + 60s); });    // state
  // Held batches are shipped from memory meanwhile (the spool holds nothing older).
  EXPECT_EQ(sender.sent.size(), 3u);
  EXPECT_EQ(loop.held_batches(), 0u);
  EXPECT_GE(loop.counters().spool_write_errors, 2u);
  loop.tick(40'000, SteadyClock::now() + 60s);
  ASSERT_EQ(sender.sent.size(), 4u);
  std::vector<int64_t> sent_ms;
  std::vector<double> dying;
  for (size_t i = 0; i < sender.sent.size(); ++i) {
    auto b = decode_batch(sender.sent[i].second);
    ASSERT_TRUE(b.ok());
    if (i > 0) {
      EXPECT_GT(sender.sent[i].first, sender.sent[i - 1].first);  // seq order
    }
    sent_ms.push_back(b->sent_ms);
    for (const auto& ss : b->sources)
      if (ss.id.app == "app") dying.push_back(ss.samples[0].value);
  }
  EXPECT_EQ(sent_ms, (std::vector<int64_t>{10'000, 20'000, 30'000, 40'000}));
  EXPECT_EQ(dying, (std::vector<double>{10, 15}));
  EXPECT_EQ(spool->count(), 0u);
  EXPECT_EQ(loop.held_batches(), 0u);
  std::filesystem::remove_all(tmpl);
}

// The spool's disk is full and the agent is then killed: what it held in memory was shipped
// from memory while it ran, and the next agent's seqs stay above every seq the dead one used
// although it could not save its state (else the server would drop them as duplicates).
TEST(AgentLoopSpoolFull, HeldBatchesShipFromMemoryAndARestartNeverReusesTheirSeqs) {
  char tmpl[] = "/tmp/statherd-loop-full-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = std::string(tmpl) + "/spool";
  uint64_t last_seq_before = 0;
  {
    auto spool = Spool::open(dir, 1 << 20, 1'000).value();
    std::vector<std::unique_ptr<Source>> sources;
    sources.push_back(std::make_unique<DyingFileSource>());
    RecordingSender sender(*spool);
    SpoolDelivery delivery(*spool, sender, Backoff(1s, 30s, 1));
    AgentLoop loop({"agent-1", "h", 10s, 2s, 500}, sources, *spool, delivery,
                   [] { return int64_t{0}; });
    loop.tick(10'000, SteadyClock::now() + 60s);  // spooled; the state file says what is next
    with_file_size_limit(0, [&] {
      loop.tick(20'000, SteadyClock::now() + 60s);
      loop.tick(30'000, SteadyClock::now() + 60s);
    });
    ASSERT_EQ(sender.sent.size(), 3u) << "the held batches were shipped from memory";
    std::vector<double> dying;
    for (const auto& [seq, body] : sender.sent) {
      auto batch = decode_batch(body);  // kept: the loop below reads into it
      ASSERT_TRUE(batch.ok());
      for (const auto& ss : batch->sources)
        if (ss.id.app == "app") dying.push_back(ss.samples[0].value);
    }
    EXPECT_EQ(dying, (std::vector<double>{10, 15}));
    for (size_t i = 1; i < sender.sent.size(); ++i)
      EXPECT_GT(sender.sent[i].first, sender.sent[i - 1].first);
    last_seq_before = sender.sent.back().first;
  }  // killed: its state file was never written
  auto spool = Spool::open(dir, 1 << 20, 40'000).value();
  auto seq = spool->begin_batch(40'000);
  ASSERT_TRUE(seq.ok());
  EXPECT_GT(*seq, last_seq_before);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace statherd::agent
