// The cluster's shard map (common/shard_map.h): the series hash agents and servers must agree
// on, the rendezvous owners (R distinct per shard, balanced, and only the shards a member gains
// or loses move when it joins or leaves), the JSON kept in etcd, and which epoch is in force.
#include "common/shard_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace statherd::cluster {
namespace {

std::vector<std::string> ids(int n, int from = 0) {
  std::vector<std::string> out;
  for (int i = from; i < from + n; ++i) out.push_back("server-" + std::to_string(i));
  return out;
}

std::set<std::string> owner_names(const ShardMap& m, uint32_t shard) {
  std::set<std::string> out;
  for (uint32_t i : m.owners[shard]) out.insert(m.members[i]);
  return out;
}

TEST(ShardHash, IsFixedByteForByte) {
  // Agents and servers of different builds must agree: these values are the scheme
  // "fnv1a64-mix/1" (computed apart, in Python); a change here is a new scheme name, not a new
  // expected value.
  EXPECT_EQ(series_hash("", "", {}), 0x7bc210046bd616ccull) << std::hex << series_hash("", "", {});
  EXPECT_EQ(series_hash("api", "requests", {{"method", "GET"}}), 0x737e010a2fccee72ull)
      << std::hex << series_hash("api", "requests", {{"method", "GET"}});
}

TEST(ShardHash, TagOrderDoesNotMatterButEveryPartDoes) {
  const Tags ab = {{"a", "1"}, {"b", "2"}};
  const Tags ba = {{"b", "2"}, {"a", "1"}};
  EXPECT_EQ(series_hash("app", "m", ab), series_hash("app", "m", ba));
  EXPECT_NE(series_hash("app", "m", ab), series_hash("app", "m", {{"a", "1"}}));
  EXPECT_NE(series_hash("app", "m", {}), series_hash("ap", "pm", {}));  // the separators
  EXPECT_NE(series_hash("app", "m", {{"a", "12"}}), series_hash("app", "m", {{"a1", "2"}}));
  EXPECT_NE(series_hash("app", "m", {}), series_hash("app2", "m", {}));
}

TEST(ShardHash, SpreadsSeriesEvenlyOverShards) {
  std::vector<int> count(64);
  for (int i = 0; i < 64000; ++i)
    ++count[shard_of(series_hash("app" + std::to_string(i % 7), "metric_" + std::to_string(i), {}),
                     64)];
  for (int c : count) {
    EXPECT_GT(c, 800);  // 1000 expected each
    EXPECT_LT(c, 1200);
  }
}

TEST(ShardMapOwners, EveryShardHasRDistinctReplicas) {
  for (uint32_t r : {1u, 2u, 3u}) {
    auto m = make_map(1, 0, 64, r, ids(5));
    ASSERT_TRUE(m) << m.error().to_string();
    for (uint32_t s = 0; s < 64; ++s) {
      ASSERT_EQ(m->owners[s].size(), r);
      EXPECT_EQ(owner_names(*m, s).size(), r);
      for (uint32_t i : m->owners[s]) EXPECT_TRUE(m->owns(m->members[i], s));
    }
  }
  auto small = make_map(1, 0, 8, 3, {"only", "two"});  // fewer members than replicas
  ASSERT_TRUE(small);
  for (uint32_t s = 0; s < 8; ++s) EXPECT_EQ(small->owners[s].size(), 2u);
  EXPECT_FALSE(small->owns("three", 0));
  EXPECT_FALSE(small->owns("only", 8));  // no such shard
}

TEST(ShardMapOwners, DoNotDependOnTheOrderMembersAreGiven) {
  auto a = make_map(1, 0, 64, 2, {"c", "a", "b", "a"});
  auto b = make_map(1, 0, 64, 2, {"b", "c", "a"});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->members, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(a->owners, b->owners);
}

TEST(ShardMapOwners, AreBalanced) {
  auto m = make_map(1, 0, 4096, 2, ids(4));
  ASSERT_TRUE(m);
  std::map<std::string, int> held, preferred;
  for (uint32_t s = 0; s < 4096; ++s) {
    for (const auto& n : owner_names(*m, s)) ++held[n];
    ++preferred[m->members[m->owners[s][0]]];
  }
  for (const auto& [n, c] : held) {  // 2048 each expected
    EXPECT_GT(c, 1850) << n;
    EXPECT_LT(c, 2250) << n;
  }
  for (const auto& [n, c] : preferred) {  // 1024 each expected
    EXPECT_GT(c, 900) << n;
    EXPECT_LT(c, 1150) << n;
  }
}

TEST(ShardMapOwners, AJoiningMemberTakesOnlyWhatItGains) {
  auto before = make_map(1, 0, 4096, 2, ids(3));
  auto after = make_map(2, 10'000, 4096, 2, ids(4));  // server-3 joins
  ASSERT_TRUE(before && after);
  int gained = 0;
  for (uint32_t s = 0; s < 4096; ++s) {
    auto b = owner_names(*before, s), a = owner_names(*after, s);
    if (a == b) continue;
    // The only change: server-3 in, one old replica out.
    ASSERT_TRUE(a.count("server-3")) << s;
    std::vector<std::string> lost;
    std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(lost));
    EXPECT_EQ(lost.size(), 1u) << s;
    ++gained;
  }
  EXPECT_GT(gained, 1850);  // 2048 expected: half the replicas of four members
  EXPECT_LT(gained, 2250);
}

TEST(ShardMapOwners, ALeavingMemberMovesOnlyItsShards) {
  auto before = make_map(1, 0, 4096, 2, ids(4));
  auto after = make_map(2, 10'000, 4096, 2, {"server-0", "server-1", "server-3"});
  ASSERT_TRUE(before && after);
  for (uint32_t s = 0; s < 4096; ++s) {
    auto b = owner_names(*before, s), a = owner_names(*after, s);
    if (!b.count("server-2")) {
      EXPECT_EQ(a, b) << s;
    } else {
      b.erase("server-2");  // the other replica stays
      for (const auto& n : b) EXPECT_TRUE(a.count(n)) << s;
    }
  }
}

TEST(ShardMapJson, RoundTripsAndRecomputesOwners) {
  auto m = make_map(7, 1'764'000'000'000, 64, 2, ids(3));
  ASSERT_TRUE(m);
  const std::string text = to_json(*m);
  EXPECT_EQ(text.find("owners"), std::string::npos);
  auto back = map_from_json(text, "test");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->epoch, 7u);
  EXPECT_EQ(back->from_ms, 1'764'000'000'000);
  EXPECT_EQ(back->members, m->members);
  EXPECT_EQ(back->owners, m->owners);
}

TEST(ShardMapJson, RefusesWhatIsNotAMapWithAClearMessage) {
  const std::string good = to_json(*make_map(1, 0, 64, 2, {"a"}));
  struct Case {
    std::string text, says;
  } cases[] = {
      {"[]", "not a JSON object"},
      {"{", "not a JSON object"},
      {R"({"epoch":1,"from_ms":0,"shards":64,"replicas":2,"members":["a"]})", "hash"},
      {R"({"epoch":1,"from_ms":0,"shards":64,"replicas":2,"hash":"md5/9","members":["a"]})",
       "md5/9"},
      {R"({"epoch":-1,"from_ms":0,"shards":64,"replicas":2,"hash":"fnv1a64-mix/1","members":["a"]})",
       "epoch"},
      {R"({"epoch":1,"from_ms":"0","shards":64,"replicas":2,"hash":"fnv1a64-mix/1","members":["a"]})",
       "from_ms"},
      {R"({"epoch":1,"from_ms":0,"shards":0,"replicas":2,"hash":"fnv1a64-mix/1","members":["a"]})",
       "0 shards"},
      {R"({"epoch":1,"from_ms":0,"shards":70000,"replicas":2,"hash":"fnv1a64-mix/1","members":["a"]})",
       "shards"},
      {R"({"epoch":1,"from_ms":0,"shards":64,"replicas":0,"hash":"fnv1a64-mix/1","members":["a"]})",
       "0 replicas"},
      {R"({"epoch":1,"from_ms":0,"shards":64,"replicas":2,"hash":"fnv1a64-mix/1","members":[]})",
       "no member"},
      {R"({"epoch":1,"from_ms":0,"shards":64,"replicas":2,"hash":"fnv1a64-mix/1","members":[""]})",
       "empty id"},
      {R"({"epoch":1,"from_ms":0,"shards":64,"replicas":2,"hash":"fnv1a64-mix/1","members":[1]})",
       "not a string"},
      // A junk id (a hand-written key) would be a destination no agent can spool for.
      {R"({"epoch":1,"from_ms":0,"shards":64,"replicas":2,"hash":"fnv1a64-mix/1","members":["s1","bad name"]})",
       "member id 'bad name' is not"},
  };
  for (const auto& c : cases) {
    auto r = map_from_json(c.text, "etcd key /statherd/x/maps/1");
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find("etcd key /statherd/x/maps/1"), std::string::npos);
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
  EXPECT_TRUE(map_from_json(good, "x"));
}

TEST(ShardMapEpochs, TheMapInForceIsTheNewestThatHasBegun) {
  std::vector<ShardMap> maps;
  maps.push_back(*make_map(3, 30'000, 8, 2, {"a", "b", "c"}));
  maps.push_back(*make_map(1, 0, 8, 2, {"a", "b"}));
  maps.push_back(*make_map(2, 20'000, 8, 2, {"a", "b", "c", "d"}));
  EXPECT_EQ(map_at(maps, -1), nullptr);
  EXPECT_EQ(map_at(maps, 0)->epoch, 1u);
  EXPECT_EQ(map_at(maps, 19'999)->epoch, 1u);
  EXPECT_EQ(map_at(maps, 20'000)->epoch, 2u);
  EXPECT_EQ(map_at(maps, 30'000)->epoch, 3u);
  EXPECT_EQ(map_at(maps, 1'000'000)->epoch, 3u);
}

}  // namespace
}  // namespace statherd::cluster
