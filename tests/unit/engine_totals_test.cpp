// The exported fleet totals are engine state (issue #15 item 1): every counter `count` point
// and distribution `count`/`sum` point carries the series' running total, and a server
// restarted on the same state dir (after a crash: snapshot + WAL replay; after a clean stop: the
// snapshot) continues it, so /metrics and remote_write never see a total go down.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>

#include "engine_test_util.h"
#include "snapshot_test_util.h"
#include "server/engine.h"

namespace statherd::server {
namespace {

using namespace testing;
namespace fs = std::filesystem;
constexpr int64_t T0 = 1'700'000'000'000;
constexpr int64_t kIv = 1000;


EngineOptions opts(const std::string& dir) {
  EngineOptions o;
  o.fsync = false;
  o.interval = std::chrono::milliseconds(kIv);
  o.grace = std::chrono::milliseconds(200);
  o.state_dir = dir;
  return o;
}

// Step k: the counter's cumulative value is 7 k^2 (the source is fresh at k = 0, so all of it
// counts); the sketch has observed k + 1 values of (k % 5 + 1) so far: different every interval.
double counter_at(int k) { return 7.0 * k * k; }
double dist_count_at(int k) { return k + 1; }
double dist_sum_at(int k) {
  double s = 0;
  for (int i = 0; i <= k; ++i) s += i % 5 + 1;
  return s;
}

std::string step_batch(int k) {
  Distribution d;
  for (int i = 0; i <= k; ++i) d.sketch.add(i % 5 + 1, 1);
  const int64_t ts = T0 + k * kIv + 300;
  return batch("agent", static_cast<uint64_t>(k + 1),
               {source(1, {counter("req", counter_at(k), ts), dist("lat", d, ts)}, k == 0)});
}

// The totals of the app-level series, in emission order.
struct Totals {
  std::vector<double> counter, dist_count, dist_sum;
  void collect(const std::vector<IntervalOutput>& outs) {
    for (const auto& o : outs)
      for (const auto& p : flat_points(o)) {
        if (p.level != Level::App) continue;
        if (p.metric == "req" && p.stat == "count") {
          EXPECT_TRUE(p.total.has_value()) << "counter count point without its total";
          if (p.total) counter.push_back(*p.total);
        }
        if (p.metric == "lat" && p.stat == "count" && p.total) dist_count.push_back(*p.total);
        if (p.metric == "lat" && p.stat == "sum" && p.total) dist_sum.push_back(*p.total);
        if (p.stat == "rate" || p.stat == "p50") {
          EXPECT_FALSE(p.total.has_value()) << p.stat;
        }
      }
  }
};

void run_steps(Engine& e, int from, int to, Totals& t) {
  for (int k = from; k < to; ++k) {
    const int64_t now = T0 + k * kIv + 300;
    ASSERT_EQ(e.ingest(step_batch(k), now).http_status, 200);
    t.collect(e.flush(now + 500));
  }
}

void expect_never_down(const std::vector<double>& v, const char* what) {
  ASSERT_FALSE(v.empty()) << what;
  for (size_t i = 1; i < v.size(); ++i)
    ASSERT_GE(v[i], v[i - 1]) << what << " went down at emission " << i;
}

TEST(EngineTotals, ContinueAcrossACrashAndACleanRestart) {
  TempDir dir;
  Totals t;
  {
    Engine first(opts(dir.path));
    ASSERT_TRUE(first.open(T0).ok());
    run_steps(first, 0, 25, t);
    EXPECT_EQ(t.counter.back(), counter_at(24));  // the interval being filled counts too
  }  // crash: no drain, no snapshot; the WAL holds every batch
  {
    Engine second(opts(dir.path));
    ASSERT_TRUE(second.open(T0 + 26 * kIv).ok());
    run_steps(second, 26, 40, t);  // step 25 is lost on the writer side: 26 holds it all
    t.collect(second.drain(T0 + 40 * kIv));
  }  // clean stop: snapshot
  Engine third(opts(dir.path));
  ASSERT_TRUE(third.open(T0 + 41 * kIv).ok());
  run_steps(third, 41, 50, t);
  t.collect(third.drain(T0 + 50 * kIv));
  expect_never_down(t.counter, "counter total");
  expect_never_down(t.dist_count, "distribution count total");
  expect_never_down(t.dist_sum, "distribution sum total");
  EXPECT_EQ(t.counter.back(), counter_at(49));
  EXPECT_EQ(t.dist_count.back(), dist_count_at(49));
  EXPECT_DOUBLE_EQ(t.dist_sum.back(), dist_sum_at(49));
}

// A state dir written before the totals were state (snapshot version 2) still loads; its
// totals start from zero once, and every later restart continues them.
TEST(EngineTotals, SnapshotVersion2LoadsAndTotalsStartThere) {
  TempDir dir;
  Totals t;
  {
    Engine first(opts(dir.path));
    ASSERT_TRUE(first.open(T0).ok());
    run_steps(first, 0, 10, t);
    first.drain(T0 + 10 * kIv);
  }
  const std::string path = dir.path + "/snapshot";
  nlohmann::json j;
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    ASSERT_GT(bytes.size(), 8u);
    j = nlohmann::json::from_cbor(bytes.substr(0, bytes.size() - 8));  // minus the checksum
  }
  ASSERT_EQ(j.at("version"), 5);
  j["version"] = 2;
  testing::unpack_snapshot_cells(j);
  for (auto& a : j.at("aggs"))
    if (!a.is_null()) a.erase(a.begin() + 14, a.end());  // version 2 had no totals
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    const auto bytes = nlohmann::json::to_cbor(j);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  Engine second(opts(dir.path));
  auto opened = second.open(T0 + 11 * kIv);
  ASSERT_TRUE(opened.ok()) << opened.error().to_string();
  Totals after;
  run_steps(second, 11, 14, after);
  ASSERT_FALSE(after.counter.empty());
  EXPECT_EQ(after.counter.back(), counter_at(13) - counter_at(9));  // from the snapshot on
}

}  // namespace
}  // namespace statherd::server
