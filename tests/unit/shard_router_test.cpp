// ShardRouter and CounterMemory (agent/shard_router.h): a scraped batch split by the servers
// that own each sample's shard in the map in force at its timestamp, and counters given the
// value read the scrape before. The last tests run the agent's side and real server engines
// together: processes' counters, changing every scrape, routed through two maps (a member
// added, then removed), into one Engine per server: the app-level counts over every server and
// interval add up to exactly what the processes counted.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "agent/shard_router.h"
#include "server/engine.h"
#include "tests/unit/engine_test_util.h"

namespace statherd::agent {
namespace {

using server::testing::counter;
using server::testing::gauge;
using server::testing::source;

constexpr int64_t T0 = 1'700'000'000'000;  // an interval boundary (10 s)

cluster::ShardMap map(uint64_t epoch, int64_t from_ms, std::vector<std::string> members,
                      uint32_t shards = 16, uint32_t replicas = 2) {
  auto m = cluster::make_map(epoch, from_ms, shards, replicas, std::move(members));
  EXPECT_TRUE(m) << m.error().message;
  return *m;
}

std::set<std::string> owners_of(const cluster::ShardMap& m, const std::string& app,
                                const std::string& name) {
  std::set<std::string> out;
  for (uint32_t i : m.owners[cluster::shard_of(cluster::series_hash(app, name, {}), m.shards)])
    out.insert(m.members[i]);
  return out;
}

Batch scrape(uint64_t seq, int64_t ts, std::vector<SourceSamples> sources) {
  Batch b;
  b.agent_id = "agent-1";
  b.seq = seq;
  b.sent_ms = ts;
  b.sources = std::move(sources);
  return b;
}

TEST(ShardRouter, EverySampleGoesToEachReplicaOfItsShardAndNowhereElse) {
  ShardRouter router;
  EXPECT_FALSE(router.split(scrape(1, T0, {})));  // no map: the batch waits
  const auto m = map(1, T0 - 60'000, {"a", "b", "c"});
  router.set_maps({m});
  std::vector<Sample> samples;
  for (int i = 0; i < 40; ++i) samples.push_back(counter("req" + std::to_string(i), i, T0 + 5));
  Batch b = scrape(7, T0, {source(1, samples, /*fresh=*/true), source(2, {gauge("mem", 3, T0)})});
  b.errors.push_back({"/tmp/bad.mmstats", "truncated"});
  auto parts = router.split(b);
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 3u);
  size_t total = 0;
  for (const RoutedBatch& r : *parts) {
    EXPECT_EQ(r.batch.seq, 7u);
    EXPECT_EQ(r.batch.agent_id, "agent-1");
    ASSERT_EQ(r.batch.errors.size(), 1u);  // every server shows the agent's source errors
    for (const SourceSamples& s : r.batch.sources) {
      EXPECT_FALSE(s.samples.empty());  // no empty part
      EXPECT_EQ(s.fresh, s.id.pid == 1);
      for (const Sample& sample : s.samples) {
        EXPECT_TRUE(owners_of(m, "web", sample.name).count(r.server)) << sample.name;
        ++total;
      }
    }
  }
  EXPECT_EQ(total, 2 * 41u);  // each of the 41 samples to its 2 replicas
}

TEST(ShardRouter, EachSampleGoesByTheMapInForceAtItsTimestamp) {
  ShardRouter router;
  const auto m1 = map(1, T0 - 60'000, {"a"}, 16, 1);
  const auto m2 = map(2, T0 + 10'000, {"b"}, 16, 1);
  router.set_maps({m2, m1});  // any order
  auto parts = router.split(scrape(1, T0, {source(1, {counter("x", 1, T0 + 9'999),
                                                       counter("y", 1, T0 + 10'000)})}));
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].server, "a");
  EXPECT_EQ((*parts)[0].batch.sources.at(0).samples.at(0).name, "x");
  EXPECT_EQ((*parts)[1].server, "b");
  EXPECT_EQ((*parts)[1].batch.sources.at(0).samples.at(0).name, "y");
  // Older than every map: the first map's (the servers count those intervals as its).
  parts = router.split(scrape(2, T0, {source(1, {counter("z", 1, T0 - 3'600'000)})}));
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->at(0).server, "a");
}

TEST(CounterMemory, EachCounterCarriesTheValueReadTheScrapeBefore) {
  CounterMemory memory(3);
  Batch b1 = scrape(1, T0, {source(1, {counter("req", 10, T0), gauge("mem", 5, T0)})});
  memory.apply(b1);
  EXPECT_FALSE(b1.sources[0].samples[0].has_previous());  // the first read: none known
  Batch b2 = scrape(2, T0, {source(1, {counter("req", 17, T0 + 10'000), gauge("mem", 6, T0)}),
                            source(2, {counter("req", 4, T0 + 10'000)})});
  memory.apply(b2);
  EXPECT_EQ(b2.sources[0].samples[0].previous, 10);
  EXPECT_FALSE(b2.sources[0].samples[1].has_previous());  // a gauge
  EXPECT_FALSE(b2.sources[1].samples[0].has_previous());  // another process: its own series
  Batch b3 = scrape(3, T0, {source(1, {counter("req", 3, T0 + 20'000)})});  // a reset
  memory.apply(b3);
  EXPECT_EQ(b3.sources[0].samples[0].previous, 17);  // the server counts 3 (value < previous)
  // Unread for 3 scrapes: forgotten (its next read carries none).
  for (uint64_t seq = 4; seq < 7; ++seq) {
    Batch other = scrape(seq, T0, {source(3, {counter("q", 1, T0)})});
    memory.apply(other);
  }
  Batch b7 = scrape(7, T0, {source(1, {counter("req", 9, T0 + 70'000)})});
  memory.apply(b7);
  EXPECT_FALSE(b7.sources[0].samples[0].has_previous());
}

// The agent's side and the servers' engines together. Two processes count, their increments
// changing every scrape; scrapes every 5 s go through the router to the engines of servers a,
// b and c. Map 1 (a, b) is in force first, map 2 (a, b, c) from T0 + 30 s, map 3 (b, c) from
// T0 + 60 s: shards move twice. The app-level counts are summed over each shard's first
// replica in the map of each interval (the leader, whose intervals reach Graphite).
struct Outcome {
  double emitted = 0;   // the app-level counts the shards' first replicas rolled up
  double written = 0;   // what the processes counted after the agent's first read
};

Outcome run_cluster(bool with_previous) {
  const std::vector<cluster::ShardMap> maps = {map(1, T0 - 60'000, {"a", "b"}, 8),
                                               map(2, T0 + 30'000, {"a", "b", "c"}, 8),
                                               map(3, T0 + 60'000, {"b", "c"}, 8)};
  ShardRouter router;
  router.set_maps(maps);
  CounterMemory memory;
  std::map<std::string, std::unique_ptr<server::Engine>> engines;
  for (const char* id : {"a", "b", "c"}) {
    server::EngineOptions o;
    o.fsync = false;
    engines[id] = std::make_unique<server::Engine>(o);
    EXPECT_TRUE(engines[id]->open(T0).ok());
  }
  const std::vector<std::string> names = {"req", "err", "bytes", "hits", "miss", "jobs"};
  std::map<std::pair<int, std::string>, double> value;  // (pid, name) -> cumulative
  Outcome out;
  for (int step = 0; step < 18; ++step) {  // T0 .. T0 + 85 s
    const int64_t ts = T0 + 5000 * step + 1000;
    std::vector<SourceSamples> sources;
    for (int pid : {1, 2}) {
      std::vector<Sample> samples;
      for (size_t i = 0; i < names.size(); ++i) {
        double& v = value[{pid, names[i]}];
        const double inc = static_cast<double>((step * 7 + static_cast<int>(i) * 3 + pid) % 11);
        if (step > 0) out.written += inc;  // the first read is the baseline
        v += inc;
        samples.push_back(counter(names[i], v, ts));
      }
      sources.push_back(source(pid, samples));
    }
    Batch b = scrape(static_cast<uint64_t>(step + 1), ts, sources);
    if (with_previous) memory.apply(b);
    auto parts = router.split(b);
    EXPECT_TRUE(parts);
    for (RoutedBatch& r : *parts)
      EXPECT_EQ(engines[r.server]->ingest(encode_batch(r.batch), ts).http_status, 200);
  }
  // What each shard's leader emits: its first replica in the map of each interval.
  for (auto& [id, engine] : engines) {
    for (const server::IntervalOutput& o : engine->flush(T0 + 200'000)) {
      const cluster::ShardMap* m = cluster::map_at(maps, o.start_s * 1000);
      for (const server::RollupRecord& r : o.records) {
        if (r.key->level != server::Level::App || r.kind != server::SeriesKind::Counter) continue;
        const uint32_t shard = cluster::shard_of(
            cluster::series_hash(r.key->app, r.key->metric, r.key->tags), m->shards);
        if (m->members[m->owners[shard][0]] != id) continue;
        for (const server::Stat& s : o.stats_of(r))
          if (s.name == "count") out.emitted += s.value;
      }
    }
  }
  return out;
}

TEST(ShardRouterWithEngines, CountersMovedBetweenServersAreCountedExactlyOnce) {
  const Outcome with = run_cluster(/*with_previous=*/true);
  EXPECT_GT(with.written, 0);
  EXPECT_EQ(with.emitted, with.written);
  // Without the previous value a server new to a series baselines on its first sample and one
  // that gets a series back counts from its stale state: the totals are wrong.
  const Outcome without = run_cluster(/*with_previous=*/false);
  EXPECT_NE(without.emitted, without.written);
}

}  // namespace
}  // namespace statherd::agent
