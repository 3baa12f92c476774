#include "server/graphite_pattern.h"

#include <gtest/gtest.h>

#include "common/names.h"
#include "server/memory_store.h"
#include "rollup_test_util.h"

namespace statherd::server {
namespace {

Result<GraphitePattern> compile(std::string_view text, const ReadLimits& limits = {}) {
  size_t budget = limits.max_alternatives;
  return GraphitePattern::compile(text, limits, budget);
}

std::string repeat(std::string_view s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

TEST(GraphitePattern, RefusesAPatternLongerThanTheLimit) {
  ReadLimits limits;
  limits.max_pattern_bytes = 17;
  EXPECT_TRUE(compile("statherd.web.*.p9", limits).ok());
  auto too_long = compile("statherd.web.*.p99", limits);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("18 bytes"), std::string::npos);
  EXPECT_NE(too_long.error().hint.find("reads.max_pattern_bytes"), std::string::npos);
}

TEST(GraphitePattern, RefusesBracesNestedDeeperThanTheLimit) {
  ReadLimits limits;
  limits.max_brace_depth = 3;
  EXPECT_TRUE(compile("a.{b,{c,{d,e}}}", limits).ok());
  auto deep = compile("a.{b,{c,{d,{e,f}}}}", limits);
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.error().message.find("nested 4 deep"), std::string::npos);
  limits.max_pattern_bytes = 20'000;
  EXPECT_FALSE(compile(repeat("{", 7000) + "a" + repeat("}", 7000), limits).ok());
}

TEST(GraphitePattern, AlternativesAreCountedOverTheWholeRequest) {
  ReadLimits limits;
  limits.max_alternatives = 1000;
  auto bomb = compile("*.*." + repeat("{a,b}", 12), limits);  // 4,096 alternatives
  ASSERT_FALSE(bomb.ok());
  EXPECT_NE(bomb.error().hint.find("reads.max_alternatives"), std::string::npos);
  size_t budget = 10;
  auto first = GraphitePattern::compile("{a,b,c}.{x,y}", limits, budget);  // 6
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->alternatives(), 6u);
  EXPECT_EQ(budget, 4u);
  EXPECT_TRUE(GraphitePattern::compile("{a,b}.{x,y}", limits, budget).ok());  // 4 more: 10
  EXPECT_FALSE(GraphitePattern::compile("a", limits, budget).ok());          // the 11th
}

TEST(GraphitePattern, MatchesAsGraphitePathMatch) {
  const std::vector<std::string> patterns = {"statherd.*.req.count", "statherd.{web,api}.*.p9?",
                                             "a.{b.c,d}", "s.[a-c]x.*", "s.{x,y{1,2}}.z", "*"};
  const std::vector<std::string> paths = {"statherd.web.req.count", "statherd.api.lat.p99",
                                          "statherd.db.lat.p99", "a.b.c", "a.d", "a.b",
                                          "s.bx.q", "s.dx.q", "s.y2.z", "s.y.z", "top"};
  for (const auto& pattern : patterns) {
    auto compiled = compile(pattern);
    ASSERT_TRUE(compiled.ok()) << pattern;
    for (const auto& path : paths) {
      EXPECT_EQ(compiled->matches(path), graphite_path_match(pattern, path)) << pattern << " " << path;
    }
  }
  EXPECT_EQ(compile("statherd.{web,api}.*.p99")->literal_prefix(), "statherd");
}

IntervalOutput gauges(int64_t start_s, int n) {
  IntervalOutput out;
  out.start_s = start_s;
  out.interval_s = 10;
  for (int i = 0; i < n; ++i) {
    SeriesPoint p;
    p.app = "web";
    p.metric = "m" + std::to_string(i);
    p.stat = "mean";
    p.value = i;
    testing::append_point(out, p);
  }
  return out;
}

TEST(BoundedMemoryStore, RenderRefusesTooManySeriesPointsOrSteps) {
  MemoryStore store({std::chrono::seconds(3600), 1'000'000, "statherd"});
  store.emit(gauges(1000, 50));
  ReadLimits limits;
  auto all = compile("statherd.web.*.mean");
  ASSERT_TRUE(all.ok());
  auto ok = store.render({*all}, 990, 1000, 0, limits);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 50u);

  limits.max_paths = 49;
  auto paths = store.render({*all}, 990, 1000, 0, limits);
  ASSERT_FALSE(paths.ok());
  EXPECT_NE(paths.error().message.find("49 series"), std::string::npos);

  limits = {};
  limits.max_points = 50 * 10 - 1;  // 50 series x 10 points of the last 100 s
  EXPECT_FALSE(store.render({*all}, 900, 1000, 0, limits).ok());
  EXPECT_TRUE(store.render({*all}, 900, 1000, 5, limits).ok());  // consolidated to 5 each

  limits = {};
  limits.max_match_steps = 49;  // 50 stored paths under "statherd.web"
  auto steps = store.render({*all}, 990, 1000, 0, limits);
  ASSERT_FALSE(steps.ok());
  EXPECT_NE(steps.error().hint.find("reads.max_match_steps"), std::string::npos);
}

// maxDataPoints shrinks the answer, not the work: the points read before consolidation are
// bounded too (reads.max_points_read), refused before anything is built (hostile review).
TEST(BoundedMemoryStore, RenderBoundsPointsReadBeforeConsolidation) {
  MemoryStore store({std::chrono::seconds(3600), 1'000'000, "statherd"});
  for (int64_t t = 910; t <= 1000; t += 10) {
    if (t == 950) continue;  // a gap: null points inside a consolidated run
    IntervalOutput out = gauges(t, 50);
    for (Stat& s : out.stats) s.value += static_cast<double>(t);
    store.emit(out);
  }
  auto all = compile("statherd.web.*.mean");
  ASSERT_TRUE(all.ok());
  ReadLimits limits;
  limits.max_points_read = 50 * 10 - 1;  // 50 series x 10 points of the last 100 s
  auto refused = store.render({*all}, 900, 1000, 1, limits);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("499 datapoints read"), std::string::npos);
  EXPECT_NE(refused.error().hint.find("reads.max_points_read"), std::string::npos);
  limits.max_points_read = 50 * 10;
  auto ok = store.render({*all}, 900, 1000, 3, limits);
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->size(), 50u);
  // The consolidated answer is the same as consolidating the full answer.
  auto full = store.render({*all}, 900, 1000, 0, ReadLimits{});
  ASSERT_TRUE(full.ok());
  for (size_t i = 0; i < 50; ++i) {
    EXPECT_EQ((*ok)[i]["datapoints"], consolidate_datapoints((*full)[i]["datapoints"], 3));
  }
}

TEST(BoundedMemoryStore, FindRefusesTooManyNodes) {
  MemoryStore store({std::chrono::seconds(3600), 1'000'000, "statherd"});
  store.emit(gauges(1000, 20));
  ReadLimits limits;
  auto query = compile("statherd.web.*");
  ASSERT_TRUE(query.ok());
  auto nodes = store.find(*query, limits);
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(nodes->size(), 20u);
  EXPECT_EQ((*nodes)[0]["text"], "m0");
  limits.max_paths = 19;
  EXPECT_FALSE(store.find(*query, limits).ok());
}

}  // namespace
}  // namespace statherd::server
