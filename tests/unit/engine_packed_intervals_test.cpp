// Emitted intervals wait out the late window packed (server/interval_cells.h). Late data for
// one of them must re-emit the same full values as if the cells had never been packed, with
// fractional gauges and many sources, also after a restart that loads packed intervals from
// the snapshot.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine_test_util.h"
#include "server/engine.h"
#include "temp_dir.h"

namespace statherd::server {
namespace {

using namespace testing;
constexpr int64_t T0 = 1'700'000'000'000;  // an interval boundary
constexpr int64_t S0 = T0 / 1000;
constexpr int kSources = 40;

EngineOptions opts(const std::string& dir) {
  EngineOptions o;
  o.fsync = false;
  o.state_dir = dir;
  return o;
}

// Exactly a float for even pids, not for odd ones: both packed value forms.
double load_of(int pid, int k) { return pid / 8.0 + k + (pid % 2 ? 0.1 : 0.0); }

// Interval k (10 s each): every source but the last reports counter `req` = 7 * k * (pid + 1)
// and gauge `load` = load_of(pid, k) (fractions), at T0 + k * 10 s + 1 s.
std::string round_batch(int k, uint64_t seq) {
  std::vector<SourceSamples> src;
  for (int pid = 1; pid < kSources; ++pid) {
    const int64_t ts = T0 + k * 10'000 + 1000;
    src.push_back(source(pid, {counter("req", 7.0 * k * (pid + 1), ts),
                               gauge("load", load_of(pid, k), ts)},
                         /*fresh=*/k == 0));
  }
  return batch("a", seq, std::move(src));
}

// The last source, late: its whole counter for interval 1 and a gauge, sent at `now`.
std::string late_batch(uint64_t seq, double req) {
  const int64_t ts = T0 + 10'000 + 2000;
  return batch("late", seq, {source(kSources, {counter("req", req, ts), gauge("load", 1234.567, ts)},
                                    /*fresh=*/true)});
}

double app_count_of_round1() {
  double sum = 0;
  for (int pid = 1; pid < kSources; ++pid) sum += 7.0 * (pid + 1);
  return sum;
}

TEST(EnginePackedIntervals, LateDataReemitsFullValuesFromPackedCells) {
  TempDir dir;
  Engine e(opts(dir.path));
  ASSERT_TRUE(e.open(T0).ok());
  for (int k = 0; k < 4; ++k) e.ingest(round_batch(k, k + 1), T0 + k * 10'000 + 1000);
  auto out = e.flush(T0 + 45'000);  // intervals 0-3 emitted (and packed)
  const double round1 = app_count_of_round1();
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count"), round1);
  const std::optional<double> max_before = point(out, S0 + 10, Level::App, "load", "max");
  ASSERT_TRUE(max_before.has_value());
  EXPECT_DOUBLE_EQ(*max_before, (kSources - 1) / 8.0 + 1 + 0.1);

  e.ingest(late_batch(1, 500), T0 + 46'000);
  out = e.flush(T0 + 47'000);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count", true), round1 + 500);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "load", "max", true), 1234.567);
  EXPECT_DOUBLE_EQ(*point(out, S0 + 10, Level::App, "load", "min", true), 1 / 8.0 + 1 + 0.1);
  // Another interval, packed and never touched, is not re-emitted.
  EXPECT_FALSE(point(out, S0 + 20, Level::App, "req", "count", true).has_value());
}

TEST(EnginePackedIntervals, PackedIntervalsSurviveARestartAndTakeLateData) {
  TempDir dir;
  const double round1 = app_count_of_round1();
  {
    Engine e(opts(dir.path));
    ASSERT_TRUE(e.open(T0).ok());
    for (int k = 0; k < 4; ++k) e.ingest(round_batch(k, k + 1), T0 + k * 10'000 + 1000);
    e.flush(T0 + 45'000);
    e.drain(T0 + 45'500);  // the snapshot holds intervals 0-3 packed
  }
  Engine again(opts(dir.path));
  auto opened = again.open(T0 + 46'000);
  ASSERT_TRUE(opened.ok()) << opened.error().to_string();
  again.ingest(late_batch(1, 80), T0 + 46'000);
  auto out = again.flush(T0 + 47'000);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count", true), round1 + 80);
  double sum = 1234.567;
  for (int pid = 1; pid < kSources; ++pid) sum += load_of(pid, 1);
  EXPECT_NEAR(*point(out, S0 + 10, Level::App, "load", "mean", true), sum / kSources, 1e-9);
}

}  // namespace
}  // namespace statherd::server
