// The engine's counter rule: a cumulative counter is finite and >= 0; anything else is refused
// and counted, never a +-1e18 spike; a step down of any size is a reset (delta = new value); and
// a NaN never reaches the rates (the batch is a 400 naming the sample). And wire kind 5, a
// counter with the agent's previous cumulative value (docs/FORMAT.md), which the engine uses
// instead of its own state (docs/CLUSTER.md, "Counters across a move"): a series that moves
// A -> B -> A between servers neither loses nor doubles an increment.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/wire.h"
#include "server/engine.h"
#include "tests/unit/engine_test_util.h"

namespace statherd::server {
namespace {

using namespace statherd::server::testing;

constexpr int64_t T0 = 1'700'000'000'000;  // an interval boundary
constexpr int64_t S0 = T0 / 1000;

EngineOptions opts() {
  EngineOptions o;
  o.fsync = false;
  return o;
}

TEST(EngineCounterValues, NegativeCounterIsRefusedAndCountedWithoutSpikes) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 5, T0 + 1000)})}), T0 + 1000);
  e.ingest(batch("a", 2, {source(1, {counter("req", -1e18, T0 + 11'000)})}), T0 + 11'000);
  e.ingest(batch("a", 3, {source(1, {counter("req", 9, T0 + 21'000)})}), T0 + 21'000);
  auto out = e.flush(T0 + 32'000);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count"), 0.0);
  EXPECT_EQ(point(out, S0 + 20, Level::App, "req", "count"), 4.0);  // 9 - 5: the baseline held
  EXPECT_EQ(e.stats().counters_rejected, 1u);
  EXPECT_EQ(e.stats().resets, 0u);
}

TEST(EngineCounterValues, HugeBackwardsStepIsAResetCountingTheNewValue) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 1e18, T0 + 1000)})}), T0 + 1000);
  e.ingest(batch("a", 2, {source(1, {counter("req", 3, T0 + 11'000)})}), T0 + 11'000);
  e.ingest(batch("a", 3, {source(1, {counter("req", 10, T0 + 21'000)})}), T0 + 21'000);
  auto out = e.flush(T0 + 32'000);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count"), 3.0);
  EXPECT_EQ(point(out, S0 + 20, Level::App, "req", "count"), 7.0);
  EXPECT_EQ(e.stats().resets, 1u);
}

TEST(EngineCounterValues, NanCounterIsA400AndTheRatesStayEmitted) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 0, T0)})}), T0);
  e.ingest(batch("a", 2, {source(1, {counter("req", 50, T0 + 1)})}), T0 + 1);
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    IngestOutcome r = e.ingest(batch("a", 3, {source(1, {counter("req", bad, T0 + 2)})}), T0 + 2);
    EXPECT_EQ(r.http_status, 400);
    EXPECT_NE(r.message.find("'req'"), std::string::npos) << r.message;
  }
  e.ingest(batch("a", 3, {source(1, {counter("req", 80, T0 + 10'001)})}), T0 + 10'001);
  auto out = e.flush(T0 + 22'000);
  auto m1 = point(out, S0 + 10, Level::App, "req", "m1_rate");
  ASSERT_TRUE(m1.has_value());
  EXPECT_TRUE(std::isfinite(*m1));
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count"), 30.0);
}

Sample counter_after(const std::string& name, double v, double previous, int64_t ts) {
  Sample s = counter(name, v, ts);
  s.previous = previous;
  return s;
}

TEST(CounterPrevious, RoundTripsAndAPlainCounterIsUnchanged) {
  Batch b;
  b.agent_id = "a";
  b.seq = 1;
  b.sent_ms = T0;
  SourceSamples src;
  src.id = {"h", "app", 1, T0 - 1000, "/p"};
  src.samples = {counter_after("req", 130, 100, T0), counter("plain", 5, T0)};
  b.sources.push_back(src);
  const std::string bytes = encode_batch(b);
  auto back = decode_batch(bytes);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->sources.at(0).samples.size(), 2u);
  EXPECT_EQ(back->sources[0].samples[0], src.samples[0]);
  EXPECT_EQ(back->sources[0].samples[0].previous, 100);
  EXPECT_FALSE(back->sources[0].samples[1].has_previous());
  EXPECT_EQ(back->sources[0].samples[1], src.samples[1]);
  // The lazy decoder the server uses reads the same.
  auto lazy = decode_batch_lazy(bytes);
  ASSERT_TRUE(lazy) << lazy.error().message;
  std::vector<Sample> seen;
  for_each_sample(lazy->sources.at(0), [&](uint64_t, const Sample& s) { seen.push_back(s); });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].previous, 100);
  EXPECT_FALSE(seen[1].has_previous());  // not left over from the sample before
  // Without a previous value a counter is kind 1, byte for byte what older servers read.
  b.sources[0].samples = {counter("plain", 5, T0)};
  const std::string plain = encode_batch(b);
  EXPECT_NE(plain.find(std::string("plain") + std::string(1, '\0') + std::string(1, '\x01')),
            std::string::npos);
}

TEST(CounterPrevious, AnInvalidPreviousValueIsRefusedWithItsSample) {
  for (double bad : {-1.0, -0.5, std::nan(""), HUGE_VAL}) {
    Batch b;
    b.agent_id = "a";
    b.seq = 1;
    SourceSamples src;
    src.id = {"h", "app", 1, 0, "/p"};
    Sample s = counter("req", 10, T0);
    src.samples = {s};
    b.sources.push_back(src);
    std::string bytes = encode_batch(b);
    // Turn the kind-1 sample into a kind-5 one carrying `bad`.
    const size_t kind_at = bytes.find(std::string("req") + std::string(1, '\0') + '\x01') + 4;
    ASSERT_EQ(bytes[kind_at], '\x01');
    bytes[kind_at] = '\x05';
    const size_t value_at = bytes.size() - 1 - 8;  // before the error count
    std::string tail(8, '\0');
    std::memcpy(tail.data(), &bad, 8);
    bytes.insert(value_at + 8, tail);
    auto r = decode_batch(bytes);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("sample 'req': previous value not a finite number >= 0"),
              std::string::npos)
        << r.error().message;
    EXPECT_FALSE(decode_batch_lazy(bytes));
  }
}

// One process' counter read every 5 s: 10, 15, 22, 30, 31, 40. Batches 1-2 go to server A,
// 3-4 to B, 5-6 to A again (a shard that moved and came back).
struct Move {
  double total_a = 0, total_b = 0;
};

Move run_move(bool with_previous) {
  Engine a(opts()), b(opts());
  EXPECT_TRUE(a.open(T0).ok());
  EXPECT_TRUE(b.open(T0).ok());
  const double values[] = {10, 15, 22, 30, 31, 40};
  double previous = Sample::kNoPrevious;  // the agent's first read: it knows none
  for (int i = 0; i < 6; ++i) {
    const int64_t ts = T0 + 5000 * i;
    Sample s = counter("req", values[i], ts);
    if (with_previous) s.previous = previous;
    Engine& to = (i < 2 || i >= 4) ? a : b;
    EXPECT_EQ(to.ingest(batch("agent", static_cast<uint64_t>(i + 1), {source(1, {s})}), ts)
                  .http_status,
              200);
    previous = values[i];
  }
  Move m;
  for (auto [engine, total] : {std::pair{&a, &m.total_a}, std::pair{&b, &m.total_b}}) {
    auto out = engine->flush(T0 + 40'000);
    for (int64_t start = S0; start < S0 + 40; start += 10)
      *total += point(out, start, Level::App, "req", "count").value_or(0);
  }
  return m;
}

TEST(CounterPrevious, ASeriesMovedAwayAndBackIsCountedOnce) {
  const Move m = run_move(/*with_previous=*/true);
  // The first read only sets the baseline (the process ran before): 40 - 10 = 30 in all.
  EXPECT_EQ(m.total_a + m.total_b, 30.0);
  // A: 15 -> 10 (5), then 30 -> 31 (1) and 31 -> 40 (9); B: 15 -> 22 (7), 22 -> 30 (8).
  EXPECT_EQ(m.total_a, 15.0);
  EXPECT_EQ(m.total_b, 15.0);
  // Without the previous value, B baselines on its first sighting and A counts from its own
  // stale state when the series comes back (15 -> 31): B's increments are counted twice.
  const Move stale = run_move(/*with_previous=*/false);
  EXPECT_EQ(stale.total_a, 30.0);  // 5, then 15 -> 31 (16) and 9
  EXPECT_EQ(stale.total_b, 8.0);   // baseline, then 8
  EXPECT_EQ(stale.total_a + stale.total_b, 38.0);
}

TEST(CounterPrevious, AResetAgainstThePreviousValueCountsTheNewValue) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch("a", 1, {source(1, {counter("req", 100, T0)})}), T0);
  // The process restarted between two reads: 100 then 4.
  e.ingest(batch("a", 2, {source(1, {counter_after("req", 4, 100, T0 + 5000)})}), T0 + 5000);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 4.0);
  EXPECT_EQ(e.stats().resets, 1u);
}

}  // namespace
}  // namespace statherd::server
