// The rollup on several threads (EngineOptions::threads, issue #10 item 2) emits exactly what
// one thread emits: same records, same order, same values bit for bit, with counters, gauges,
// distributions, several hosts and processes, late data (re-emissions), restarts and series
// that expire. Shards are made tiny so that 4 threads split even this small input.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <pthread.h>
#include <set>
#include <string>
#include <thread>

#include "common/thread_name.h"
#include "engine_test_util.h"
#include "server/engine.h"
#include "server/fork_join_pool.h"
#include "server/series_point.h"

namespace statherd::server {
namespace {

using namespace testing;

constexpr int64_t T0 = 1'700'000'000'000;  // an interval boundary
constexpr int64_t kIv = 10'000;
constexpr int kRounds = 14;

Distribution sketch_of(int observations, int seed) {
  Distribution d;
  d.form = Distribution::Form::Sketch;
  for (int i = 0; i < observations; ++i) d.sketch.add(0.001 * (1 + (seed * 31 + i * 7) % 113));
  return d;
}

Distribution buckets_of(int round, int seed) {
  Distribution d;
  d.form = Distribution::Form::Buckets;
  d.bucket_upper_bounds = {0.01, 0.1, 1, INFINITY};
  d.bucket_counts = {double(round * 3 + seed % 5), double(round * (seed % 3)), double(round), 0};
  d.count = d.bucket_counts[0] + d.bucket_counts[1] + d.bucket_counts[2];
  d.sum = d.count * 0.05 + seed;
  return d;
}

// One round's batches: 3 agents x up to 4 processes x ~20 series; the mix changes by round
// (series come and go, a process restarts with a new pid, values are random).
std::vector<std::string> round_batches(std::mt19937& rng, int round, int64_t ts) {
  std::vector<std::string> out;
  std::uniform_real_distribution<double> value(0, 1000);
  for (int agent = 0; agent < 3; ++agent) {
    std::vector<SourceSamples> sources;
    for (int p = 0; p < 4; ++p) {
      if (agent == 2 && p == 3 && round > 6) continue;  // a process gone: its series expire
      int64_t pid = 100 * agent + p + (agent == 1 && p == 0 && round >= 8 ? 50 : 0);  // restart
      std::vector<Sample> samples;
      for (int i = 0; i < 20; ++i) {
        if (i % 7 == round % 7 && i > 10) continue;  // a series skipped now and then
        if (i >= 16 && round > 9 && agent == 0) continue;  // series that stop and expire
        std::string name = "m" + std::to_string(i);
        int seed = agent * 1000 + p * 100 + i;
        if (i % 4 == 0) samples.push_back(gauge(name, std::round(value(rng)) / 4, ts));
        else if (i % 9 == 5) samples.push_back(dist(name, sketch_of(round * 5 + 1, seed), ts));
        else if (i % 9 == 7) samples.push_back(dist(name, buckets_of(round + 1, seed), ts));
        else {
          Sample c = counter(name, round * (i + 1) + std::floor(value(rng)) * 0.1 * round, ts);
          if (i % 3 == 0) c.tags = {{"code", std::to_string(200 + (seed % 3))}};
          samples.push_back(c);
        }
      }
      sources.push_back(source(pid, std::move(samples), round == 0, "host" + std::to_string(agent)));
    }
    out.push_back(batch("agent" + std::to_string(agent), round + 1, std::move(sources)));
  }
  return out;
}

std::vector<IntervalOutput> run_engine(unsigned threads, uint32_t min_shard_series) {
  EngineOptions o;
  o.threads = threads;
  o.min_shard_series = min_shard_series;
  o.level_process = true;
  o.idle_timeout = std::chrono::milliseconds(30'000);
  Engine e(o);
  EXPECT_TRUE(e.open(T0).ok());
  std::mt19937 rng(20261201);
  std::vector<IntervalOutput> all;
  uint64_t late_seq = 1000;
  for (int r = 0; r < kRounds; ++r) {
    int64_t now = T0 + r * kIv + 3000;
    for (const std::string& body : round_batches(rng, r, now - 1000))
      EXPECT_EQ(e.ingest(body, now).http_status, 200);
    if (r % 4 == 3) {  // late data for an interval already emitted: a re-emission
      int64_t late_ts = T0 + (r - 2) * kIv + 500;
      Sample c = counter("late", double(r * 10 + 5), late_ts);
      Sample g = gauge("m0", double(r), late_ts);
      EXPECT_EQ(e.ingest(batch("late-agent", ++late_seq,
                               {source(900, {c, g}, true, "host1")}), now).http_status, 200);
    }
    for (IntervalOutput& io : e.flush(now + kIv)) all.push_back(std::move(io));
  }
  for (IntervalOutput& io : e.drain(T0 + kRounds * kIv + 5000)) all.push_back(std::move(io));
  return all;
}

bool same_bits(double a, double b) { return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b); }

// Series keys are numbered as the engine meets them (at ingest, one thread): the same input
// numbers the same series alike on every thread count, counted from the run's first id.
void expect_same_key_numbers(const std::vector<IntervalOutput>& one,
                             const std::vector<IntervalOutput>& many) {
  auto first_id = [](const std::vector<IntervalOutput>& outs) {
    uint64_t lowest = UINT64_MAX;
    for (const IntervalOutput& o : outs)
      for (const RollupRecord& r : o.records) lowest = std::min(lowest, r.key->id);
    return lowest;
  };
  const uint64_t base1 = first_id(one), base_n = first_id(many);
  std::set<uint64_t> distinct;
  ASSERT_EQ(one.size(), many.size());
  for (size_t i = 0; i < one.size(); ++i) {
    ASSERT_EQ(one[i].records.size(), many[i].records.size());
    for (size_t k = 0; k < one[i].records.size(); ++k) {
      ASSERT_NE(one[i].records[k].key->id, 0u);
      EXPECT_EQ(one[i].records[k].key->id - base1, many[i].records[k].key->id - base_n)
          << "output " << i << " record " << k;
      distinct.insert(one[i].records[k].key->id);
    }
  }
  EXPECT_GT(distinct.size(), 10u);
}

void expect_identical(const std::vector<IntervalOutput>& one, const std::vector<IntervalOutput>& many) {
  ASSERT_EQ(one.size(), many.size());
  for (size_t i = 0; i < one.size(); ++i) {
    SCOPED_TRACE("output " + std::to_string(i));
    EXPECT_EQ(one[i].start_s, many[i].start_s);
    EXPECT_EQ(one[i].reemit, many[i].reemit);
    ASSERT_EQ(one[i].records.size(), many[i].records.size());
    for (size_t k = 0; k < one[i].records.size(); ++k) {
      const RollupRecord& a = one[i].records[k];
      const RollupRecord& b = many[i].records[k];
      EXPECT_EQ(a.kind, b.kind) << k;
      EXPECT_EQ(a.stat_count, b.stat_count) << k;
      EXPECT_TRUE(same_bits(a.count_total, b.count_total)) << k;
      EXPECT_TRUE(same_bits(a.sum_total, b.sum_total)) << k;
    }
    std::vector<SeriesPoint> p1 = flat_points(one[i]), pn = flat_points(many[i]);
    ASSERT_EQ(p1.size(), pn.size());
    for (size_t k = 0; k < p1.size(); ++k) {
      const SeriesPoint& a = p1[k];
      const SeriesPoint& b = pn[k];
      ASSERT_TRUE(a.level == b.level && a.app == b.app && a.host == b.host && a.pid == b.pid &&
                  a.metric == b.metric && a.tags == b.tags && a.stat == b.stat)
          << "point " << k << ": " << a.host << " " << a.metric << " " << a.stat << " vs "
          << b.host << " " << b.metric << " " << b.stat;
      EXPECT_TRUE(same_bits(a.value, b.value)) << a.metric << " " << a.stat << ": " << a.value
                                               << " vs " << b.value;
      EXPECT_EQ(a.total.has_value(), b.total.has_value());
      if (a.total && b.total) {
        EXPECT_TRUE(same_bits(*a.total, *b.total));
      }
    }
  }
}

TEST(EngineThreads, FourThreadsEmitExactlyWhatOneThreadEmits) {
  std::vector<IntervalOutput> one = run_engine(1, 7);
  std::vector<IntervalOutput> four = run_engine(4, 7);
  // The input covers what it claims: re-emissions, every kind, and series that expired.
  size_t reemits = 0, dists = 0, gauges = 0, counters = 0;
  for (const IntervalOutput& o : one) {
    reemits += o.reemit;
    for (const RollupRecord& r : o.records) {
      dists += r.kind == SeriesKind::Distribution;
      gauges += r.kind == SeriesKind::Gauge;
      counters += r.kind == SeriesKind::Counter;
    }
  }
  EXPECT_GE(reemits, 2u);
  EXPECT_GT(dists, 0u);
  EXPECT_GT(gauges, 0u);
  EXPECT_GT(counters, 0u);
  EXPECT_GT(one.front().records.size(), one.back().records.size());  // series expired
  expect_identical(one, four);
  expect_same_key_numbers(one, four);
}

TEST(EngineThreads, ShardSizesDoNotChangeTheOutput) {
  std::vector<IntervalOutput> one = run_engine(1, 4096);
  expect_identical(one, run_engine(2, 1));
  expect_identical(one, run_engine(3, 50));
}

TEST(ForkJoinPool, RunsEveryTaskOnceAndRethrows) {
  ForkJoinPool pool(4);
  EXPECT_EQ(pool.size(), 4u);
  for (int round = 0; round < 50; ++round) {
    std::vector<int> hits(37, 0);
    pool.run(hits.size(), [&](size_t i) { hits[i] += 1; });
    for (int h : hits) ASSERT_EQ(h, 1);
  }
  EXPECT_THROW(pool.run(8, [](size_t i) { if (i == 5) throw std::runtime_error("x"); }),
               std::runtime_error);
  int after = 0;
  pool.run(1, [&](size_t) { ++after; });  // still usable
  EXPECT_EQ(after, 1);
}

// The workers carry "<name>-<n>" (what top -H and perf show); a name past 15 bytes is cut.
std::multiset<std::string> thread_names() {
  std::multiset<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  return names;
}

bool wait_for_names(const std::vector<std::string>& wanted) {
  for (int i = 0; i < 500; ++i) {
    const auto names = thread_names();
    if (std::all_of(wanted.begin(), wanted.end(), [&](const auto& n) { return names.count(n); }))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(ForkJoinPool, NamesItsWorkers) {
  ForkJoinPool pool(3, "rollup");
  EXPECT_TRUE(wait_for_names({"rollup-1", "rollup-2"})) << ::testing::PrintToString(thread_names());
  EXPECT_EQ(thread_names().count("rollup-3"), 0u);  // the caller is the third thread
}

TEST(ThreadName, IsCutAtFifteenBytes) {
  std::string seen;
  std::thread t([&] {
    name_this_thread("a-very-long-thread-name");
    char buffer[32] = {};
    pthread_getname_np(pthread_self(), buffer, sizeof buffer);
    seen = buffer;
  });
  t.join();
  EXPECT_EQ(seen, "a-very-long-thr");
}

TEST(ForkJoinPool, ResolvesAutoToTheMachinesCores) {
  EXPECT_EQ(resolve_threads(3), 3u);
  EXPECT_GE(resolve_threads(0), 1u);
  EXPECT_LE(resolve_threads(0), kMaxAutoThreads);
  EXPECT_EQ(resolve_threads(100000), kMaxThreads);
}

}  // namespace
}  // namespace statherd::server
