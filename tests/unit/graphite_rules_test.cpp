#include "server/graphite_rules.h"
#include "server/sinks/graphite_naming.h"

#include <gtest/gtest.h>

#include <utility>

#include "server/server_config.h"

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
  GraphiteRules r =
      rules_of({{"allow", "."}, {"forbid", "\\.hosts\\."}, {"allow", "\\.hosts\\.a1\\."}});
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

TEST(GraphiteRulesConfig, LoadsRulesAndTagsFromYaml) {
  ServerConfig c;
  Status s = load_server_config_text("s.yaml",
                                     "graphite:\n  tags: true\n  rules:\n"
                                     "    - allow: '^statherd\\.'\n    - forbid: 'p99$'\n",
                                     c);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(c.graphite_tags);
  EXPECT_EQ(c.graphite_rules.rules().size(), 2u);
  EXPECT_TRUE(c.graphite_rules.passes("statherd.web.x.p50"));
  EXPECT_FALSE(c.graphite_rules.passes("statherd.web.x.p99"));
}

TEST(GraphiteRulesConfig, BadRegexIsAConfigErrorWithPosition) {
  ServerConfig c;
  Status s = load_server_config_text("s.yaml", "graphite:\n  rules:\n    - prune: '(x'\n", c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("s.yaml:3:14: graphite.rules.prune: bad regular expression"),
            std::string::npos)
      << s.error().message;
  Status kind = load_server_config_text("s.yaml", "graphite:\n  rules:\n    - keep: x\n", c);
  ASSERT_FALSE(kind);
  EXPECT_NE(kind.error().message.find("s.yaml:3:"), std::string::npos) << kind.error().message;
}

}  // namespace
}  // namespace statherd::server
