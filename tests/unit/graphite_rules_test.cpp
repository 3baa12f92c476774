#include "server/graphite_rules.h"

#include <gtest/gtest.h>

#include <utility>

namespace statherd::server {
namespace {

GraphiteRules rules_of(std::vector<std::pair<std::string, std::string>> specs) {
  std::vector<GraphiteRule> rules;
  for (auto& [kind, re] : specs) {
    auto rule = make_graphite_rule(kind, re);
    EXPECT_TRUE(rule) << kind << " " << re;
    if (rule) rules.push_back(std::move(*rule));
  }
  return GraphiteRules(std::move(rules));
}

TEST(GraphiteRules, NoRulesPassEverything) {
  GraphiteRules none;
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(none.passes("statherd.web.req.count"));
}

TEST(GraphiteRules, OnlyForbidRulesAreABlacklist) {
  GraphiteRules r = rules_of({{"forbid", "\\.p99$"}});
  EXPECT_FALSE(r.passes("statherd.web.lat.p99"));
  EXPECT_TRUE(r.passes("statherd.web.lat.p50"));
}

TEST(GraphiteRules, AnyAllowRuleMakesAWhitelist) {
  GraphiteRules r = rules_of({{"allow", "^statherd\\.web\\."}});
  EXPECT_TRUE(r.passes("statherd.web.req.count"));
  EXPECT_FALSE(r.passes("statherd.db.req.count"));
}

TEST(GraphiteRules, LastMatchingRuleWins) {
  GraphiteRules r = rules_of({{"allow", "."}, {"forbid", "\\.hosts\\."}, {"allow", "\\.hosts\\.a1\\."}});
  EXPECT_TRUE(r.passes("statherd.web.req.count"));
  EXPECT_FALSE(r.passes("statherd.web.hosts.b2.req.count"));
  EXPECT_TRUE(r.passes("statherd.web.hosts.a1.req.count"));
  GraphiteRules reversed = rules_of({{"allow", "\\.hosts\\.a1\\."}, {"forbid", "\\.hosts\\."}});
  EXPECT_FALSE(reversed.passes("statherd.web.hosts.a1.req.count"));
}

TEST(GraphiteRules, PruneCutsASubtreeAndBeatsAllow) {
  GraphiteRules r = rules_of({{"prune", "^statherd\\.web\\.hosts$"}, {"allow", "."}});
  EXPECT_FALSE(r.passes("statherd.web.hosts.a1.req.count"));
  EXPECT_TRUE(r.passes("statherd.web.hostsx.count"));  // a sibling node, not the subtree
  EXPECT_TRUE(r.passes("statherd.web.req.count"));
}

TEST(GraphiteRules, BadRegexAndKindAreErrors) {
  auto bad = make_graphite_rule("allow", "([a-z");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("bad regular expression '([a-z'"), std::string::npos);
  EXPECT_FALSE(make_graphite_rule("permit", "x"));
  EXPECT_FALSE(make_graphite_rule("forbid", ""));
}

TEST(GraphiteTaggedPath, TagsBecomeSanitizedSuffixes) {
  SeriesPoint p;
  p.level = Level::Host;
  p.app = "web";
  p.host = "h1.example";
  p.metric = "req.time";
  p.tags = {{"code", "2;00"}, {"route", "/x=y"}};
  p.stat = "p99";
  EXPECT_EQ(graphite_tagged_path(p, "statherd"),
            "statherd.web.hosts.h1_example.req.time.p99;code=2_00;route=_x_y");
  p.tags.clear();
  EXPECT_EQ(graphite_tagged_path(p, ""), "web.hosts.h1_example.req.time.p99");
}

}  // namespace
}  // namespace statherd::server
