// Durability of the engine's state (issue #9 item 1): every kind of state goes through snapshot
// + WAL, and an engine restarted on the same state dir emits exactly what an engine that never
// stopped emits. Also: expired sources are recycled, so many short-lived processes leave a
// bounded snapshot (issue #9 item 6).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <tuple>

#include "engine_test_util.h"
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
  o.level_process = true;
  o.idle_timeout = std::chrono::milliseconds(20'000);
  o.state_dir = dir;
  o.snapshot_every = std::chrono::milliseconds(60'000);  // the tests' clock: a snapshot at 60 s
  return o;
}

using Key = std::tuple<int64_t, int, std::string, std::string, std::string>;
using Values = std::map<Key, double>;  // last value per (interval, level, host/pid, metric, stat)

void collect(const std::vector<IntervalOutput>& outs, Values& v) {
  for (const auto& o : outs)
    for (const auto& p : flat_points(o))
      v[{o.start_s, static_cast<int>(p.level), p.host + "/" + std::to_string(p.pid), p.metric, p.stat}] = p.value;
}

// Every kind of sample, values changing every step, a source appearing late, a late sample.
std::string step_batch(int k) {
  Distribution sk;
  for (int i = 0; i <= k; ++i) sk.sketch.add(k < 40 ? 0.01 : 0.5, 10);
  Distribution h;
  h.form = Distribution::Form::Buckets;
  h.bucket_upper_bounds = {0.1, 1, INFINITY};
  h.bucket_counts = {double(5 * k), double(k < 40 ? 0 : 3 * (k - 40)), 1};
  h.count = h.bucket_counts[0] + h.bucket_counts[1] + 1;
  h.sum = 0.05 * 5 * k + 0.5 * h.bucket_counts[1] + 7;
  Distribution sm;
  sm.form = Distribution::Form::Summary;
  sm.count = 4.0 * k; sm.sum = 1.5 * k; sm.min = 0.1; sm.max = NAN;
  sm.quantiles = {{0.5, 0.2 + k * 0.01}, {0.99, 0.9 + k * 0.001}};  // the decoder refuses non-finite quantiles
  Sample text;
  text.name = "version";
  text.kind = Kind::Text;
  text.text = "1." + std::to_string(k);
  const int64_t ts = T0 + k * kIv + 300;
  std::vector<SourceSamples> src;
  src.push_back(source(1, {counter("req", 7.0 * k * k, ts), gauge("queue", k % 7, ts),
                           dist("lat", sk, ts), dist("hist", h, ts), dist("pmf", sm, ts), text},
                       k == 0));
  if (k >= 30) src.push_back(source(2, {counter("req", 3.0 * (k - 30), ts), dist("lat", sk, ts)},
                                    k == 30, "h2"));
  if (k == 55) src.push_back(source(3, {counter("req", 50, T0 + 5 * kIv)}, true));  // late
  Batch b;
  b.agent_id = "agent";
  b.seq = static_cast<uint64_t>(k + 1);
  b.sources = std::move(src);
  b.errors = {{"/tmp/bad.db", "unreadable at step " + std::to_string(k)}};
  return encode_batch(b);
}

void run_steps(Engine& e, int from, int to, Values& v) {
  for (int k = from; k < to; ++k) {
    const int64_t now = T0 + k * kIv + 300;
    ASSERT_EQ(e.ingest(step_batch(k), now).http_status, 200);
    collect(e.flush(now + 500), v);
  }
}

void expect_same(const Engine& a, const Engine& b, const Values& va, const Values& vb) {
  EXPECT_EQ(va.size(), vb.size());
  for (const auto& [key, value] : va) {
    auto it = vb.find(key);
    ASSERT_NE(it, vb.end()) << std::get<1>(key) << std::get<2>(key) << std::get<3>(key) << "." << std::get<4>(key) << " @" << std::get<0>(key);
    if (std::isnan(value)) EXPECT_TRUE(std::isnan(it->second));
    else EXPECT_EQ(value, it->second) << std::get<1>(key) << std::get<2>(key) << " " << std::get<3>(key) << "." << std::get<4>(key) << " @" << std::get<0>(key);
  }
  const int64_t now = T0 + 100 * kIv;
  EXPECT_EQ(a.sources_json(now), b.sources_json(now));
  EngineStats sa = a.stats(), sb = b.stats();
  EXPECT_EQ(std::tie(sa.samples_in, sa.resets, sa.late_samples, sa.series, sa.sources, sa.batches),
            std::tie(sb.samples_in, sb.resets, sb.late_samples, sb.series, sb.sources, sb.batches));
}

// Crash (no drain) after a periodic snapshot and more WAL records: snapshot + WAL replay.
TEST(EngineRestart, CrashAfterSnapshotContinuesLikeAnEngineThatNeverStopped) {
  TempDir never_dir, dir;
  Engine never(opts(never_dir.path));
  ASSERT_TRUE(never.open(T0).ok());
  Values expected, got;
  run_steps(never, 0, 90, expected);
  {
    Engine first(opts(dir.path));
    ASSERT_TRUE(first.open(T0).ok());
    run_steps(first, 0, 70, got);  // a late sample, a snapshot at 60 s, then WAL records
    ASSERT_TRUE(fs::exists(dir.path + "/snapshot"));
  }
  Engine second(opts(dir.path));
  ASSERT_TRUE(second.open(T0 + 70 * kIv).ok());
  run_steps(second, 70, 90, got);
  expect_same(never, second, expected, got);
}

// A clean stop (drain writes a snapshot with every kind of state), then a restart at once.
TEST(EngineRestart, CleanRestartWithDistributionsLoadsAndCountsOnlyNewObservations) {
  TempDir dir;
  Values before, after;
  {
    Engine first(opts(dir.path));
    ASSERT_TRUE(first.open(T0).ok());
    run_steps(first, 0, 50, before);
    collect(first.drain(T0 + 50 * kIv), before);
  }
  Engine second(opts(dir.path));
  ASSERT_TRUE(second.open(T0 + 51 * kIv).ok()) << second.open(T0 + 51 * kIv).error().to_string();
  run_steps(second, 51, 56, after);
  // The sketch holds 10 * (k + 1) observations at step k: step 51 adds 20 to what the snapshot
  // holds (step 49; step 50 was never sent), at 0.5.
  const int64_t s51 = (T0 + 51 * kIv) / 1000;
  EXPECT_EQ(after.at({s51, static_cast<int>(Level::Host), "h1/-1", "lat", "count"}), 520.0 - 500.0);
  EXPECT_NEAR(after.at({s51, static_cast<int>(Level::Host), "h1/-1", "lat", "p50"}), 0.5, 0.006);
  EXPECT_EQ(after.at({s51, static_cast<int>(Level::Host), "h1/-1", "req", "count"}),
            7.0 * (51 * 51 - 49 * 49));
  EXPECT_EQ(after.at({s51, static_cast<int>(Level::Host), "h1/-1", "hist", "count"}),
            (5 * 51 + 3 * 11) - (5 * 49 + 3 * 9) + 0.0);
}

// 200 short-lived processes, one after another: expired sources and slots are recycled and
// the snapshot stays the size of the live set.
TEST(EngineRestart, ShortLivedSourcesLeaveABoundedSnapshot) {
  TempDir dir;
  EngineOptions o = opts(dir.path);
  o.idle_timeout = std::chrono::milliseconds(3 * kIv);
  o.late_window = std::chrono::milliseconds(5 * kIv);
  Engine e(o);
  ASSERT_TRUE(e.open(T0).ok());
  std::vector<uintmax_t> sizes;
  for (int k = 0; k < 200; ++k) {
    const int64_t now = T0 + k * kIv + 300;
    std::vector<Sample> samples;
    for (int m = 0; m < 64; ++m) samples.push_back(counter("c" + std::to_string(m), k, now));
    e.ingest(batch("a", k + 1, {source(1000 + k, std::move(samples), true)}), now);
    e.flush(now + 500);
    if (k % 50 == 49) {
      e.drain(now + 600);  // writes a snapshot
      sizes.push_back(fs::file_size(dir.path + "/snapshot"));
    }
  }
  EXPECT_LE(e.stats().sources, 5u);
  EXPECT_LE(e.stats().series, 5u * 64);
  ASSERT_EQ(sizes.size(), 4u);
  EXPECT_LT(sizes[3], sizes[0] * 5 / 4) << sizes[0] << " -> " << sizes[3];
  EXPECT_LT(sizes[3], sizes[1] + 100);  // dead sources are recycled, not kept as tombstones
  std::printf("snapshot bytes after 50/100/150/200 processes: %ju %ju %ju %ju\n", sizes[0], sizes[1], sizes[2], sizes[3]);
}

}  // namespace
}  // namespace statherd::server
