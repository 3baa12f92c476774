// The engine's counter rule: a cumulative counter is finite and >= 0; anything else is refused
// and counted, never a +-1e18 spike; a step down of any size is a reset (delta = new value); and
// a NaN never reaches the rates (the batch is a 400 naming the sample).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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

}  // namespace
}  // namespace statherd::server
